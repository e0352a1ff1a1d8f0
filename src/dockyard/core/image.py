"""Facts about an image read from its manifest and its config blob: platform, size, layers with
the commands that made them, labels.

Pure functions, no I/O. The config is JSON pushed by anyone, so every reader here accepts any
value (wrong types, missing keys) and falls back to None or empty rather than raising.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dockyard.core.manifest import ParsedManifest

IMAGE_CONFIG_TYPES = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
MAX_CONFIG_BYTES = 1 << 20  # configs read at push; bigger ones are left for the detail view
MAX_PLATFORM = 128  # the width of manifests.platform
UNKNOWN = "unknown"  # what BuildKit writes as the platform of attestation manifests


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What `manifests` stores about an image so that listings need no blob reads."""

    config_digest: str | None
    image_size: int | None
    platform: str | None


@dataclass(frozen=True, slots=True)
class Layer:
    digest: str
    size: int
    media_type: str
    created_by: str | None  # the history command that made this layer
    created: str | None  # that history entry's `created`
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    created: str | None
    created_by: str | None
    comment: str | None
    empty_layer: bool


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_config(data: bytes | None) -> dict[str, Any] | None:
    """The config blob as a JSON object, or None when it is absent or not a JSON object."""
    if data is None:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def has_image_config(parsed: ParsedManifest) -> bool:
    return not parsed.is_index and parsed.config is not None and parsed.config.media_type in IMAGE_CONFIG_TYPES


def platform_of(config: Any) -> str | None:
    """"os/architecture[/variant]" of an image config (or an index descriptor's `platform`, which
    has the same keys); None when os or architecture is missing or "unknown"."""
    if not isinstance(config, dict):
        return None
    os_, arch, variant = _str(config.get("os")), _str(config.get("architecture")), _str(config.get("variant"))
    if not os_ or not arch or UNKNOWN in (os_, arch):
        return None
    text = f"{os_}/{arch}/{variant}" if variant else f"{os_}/{arch}"
    return text if len(text) <= MAX_PLATFORM else None


def image_size(parsed: ParsedManifest, manifest_size: int) -> int:
    """Compressed size of an image: the manifest's bytes, its config and its layers."""
    config = parsed.config.size if parsed.config is not None else 0
    return manifest_size + config + sum(layer.size for layer in parsed.layers)


def image_facts(parsed: ParsedManifest, manifest_size: int, config: dict[str, Any] | None) -> ImageFacts:
    """The stored facts of an image manifest (not an index: its size comes from its children)."""
    return ImageFacts(
        config_digest=parsed.config.digest if parsed.config is not None else None,
        image_size=image_size(parsed, manifest_size),
        platform=platform_of(config) if has_image_config(parsed) else None,
    )


def history_of(config: Any) -> list[HistoryEntry]:
    history = config.get("history") if isinstance(config, dict) else None
    if not isinstance(history, list):
        return []
    return [
        HistoryEntry(created=_str(h.get("created")), created_by=_str(h.get("created_by")),
                     comment=_str(h.get("comment")), empty_layer=h.get("empty_layer") is True)
        for h in history if isinstance(h, dict)
    ]


def layers_with_history(parsed: ParsedManifest, config: Any) -> list[Layer]:
    """The layers, each with the history entry that made it: the entries without `empty_layer`
    are matched to the layers in order. When the counts differ (squashed or hand-made images),
    the layers left over get no command."""
    made = [h for h in history_of(config) if not h.empty_layer]
    out = []
    for i, layer in enumerate(parsed.layers):
        entry = made[i] if i < len(made) else None
        out.append(Layer(digest=layer.digest, size=layer.size, media_type=layer.media_type,
                         created_by=entry.created_by if entry else None, created=entry.created if entry else None,
                         urls=layer.urls))
    return out


def config_section(config: Any) -> dict[str, Any] | None:
    """The config's "config" object: Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Labels…"""
    section = config.get("config") if isinstance(config, dict) else None
    return section if isinstance(section, dict) else None


def str_map(value: Any) -> dict[str, str]:
    """The string-to-string entries of a JSON object (labels, annotations); {} for anything else."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def labels_of(config: Any) -> dict[str, str]:
    section = config_section(config)
    return str_map(section.get("Labels") if section else None)


def created_of(config: Any) -> str | None:
    return _str(config.get("created")) if isinstance(config, dict) else None


def author_of(config: Any) -> str | None:
    return _str(config.get("author")) if isinstance(config, dict) else None
