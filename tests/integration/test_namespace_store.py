"""NamespaceStore details that the API tests do not reach."""

from __future__ import annotations

from typing import Any


def test_deleting_a_namespace_with_an_underscore_leaves_its_look_alikes(services: Any) -> None:
    # '_' is a LIKE wildcard: "a_b/%" would also match "axb/app" without escaping.
    store = services.namespaces
    for ns in ("a_b", "axb"):
        store.create(ns, None, False, True)
        assert store.create_repository(f"{ns}/app", None, None, None)
    assert store.delete("a_b") == ["a_b/app"]
    assert [r.name for r in store.repositories("axb", None, None, 10)] == ["axb/app"]
    assert store.get("axb") is not None and store.get("a_b") is None


def test_library_holds_one_component_names(services: Any) -> None:
    store = services.namespaces
    store.create("library", None, True, True)
    store.create_repository("busybox", None, None, None)
    store.create_repository("library/alpine", None, None, None)
    assert {r.name for r in store.repositories("library", None, None, 10)} == {"busybox", "library/alpine"}
    assert store.facts("busybox").namespace == "library" and store.facts("busybox").public
