"""Which installation a shared blob store belongs to.

Two installations (two databases) writing to one bucket would each take the other's blobs for
garbage and delete them. Every installation has an id (a cluster fact in its database, shared
by all its nodes), and a shared store is marked with the id of the installation that uses it: a
node whose database has another id refuses to start rather than lose data. Nodes sharing one
PostgreSQL database share the id, so any number of them may use the store.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from dockyard.meta.cluster import ClusterFacts

INSTALLATION = "installation"


class StoreInUse(Exception):
    """The store is marked as used by another installation."""


class MarkedStore(Protocol):
    bucket: str

    def owner(self) -> str | None: ...

    def mark_owner(self, installation: str) -> None: ...


def installation_id(facts: ClusterFacts) -> str:
    return facts.get_or_create(INSTALLATION, lambda: uuid.uuid4().hex)


def check_owner(store: MarkedStore, facts: ClusterFacts, claim: bool) -> str:
    """Raise StoreInUse when the store belongs to another installation; with `claim`, mark an
    unmarked store as ours. Returns the store's owner (ours, or None when unmarked)."""
    ours = installation_id(facts)
    owner = store.owner()
    if owner is None and claim:
        store.mark_owner(ours)
        owner = store.owner()  # two first starts at once: whoever wrote last is the owner
    if owner is not None and owner != ours:
        raise StoreInUse(
            f"bucket {store.bucket} holds the blobs of another Dockyard installation (id {owner}; this database's "
            f"is {ours}). Nodes of one registry must share one PostgreSQL database (database.url); a second "
            "database on the same bucket would delete the first one's blobs as garbage. Use another bucket or prefix.")
    return owner or ""
