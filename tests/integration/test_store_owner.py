"""A shared blob store belongs to one installation (registry/cluster.py): nodes of one database
share it, a second database is refused before its GC could delete the first one's blobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dockyard.meta.cluster import ClusterFacts
from dockyard.meta.db import Database
from dockyard.meta.migrate import upgrade
from dockyard.registry.cluster import StoreInUse, check_owner, installation_id


class MarkedBucket:
    """The owner mark of a bucket, in memory (tests/s3 tests the real object)."""

    bucket = "registry"

    def __init__(self) -> None:
        self.mark: str | None = None

    def owner(self) -> str | None:
        return self.mark

    def mark_owner(self, installation: str) -> None:
        self.mark = installation


@pytest.fixture
def facts(db_url: str) -> Iterator[ClusterFacts]:
    db = Database(db_url)
    upgrade(db)
    yield ClusterFacts(db)
    db.dispose()


def test_the_first_installation_marks_the_store_and_its_nodes_share_it(facts: ClusterFacts, db_url: str) -> None:
    bucket = MarkedBucket()
    assert check_owner(bucket, facts, claim=True) == installation_id(facts)
    other_node = Database(db_url)  # another node on the same database
    try:
        assert check_owner(bucket, ClusterFacts(other_node), claim=True) == bucket.mark
    finally:
        other_node.dispose()


def test_another_installation_is_refused(facts: ClusterFacts, tmp_path: object) -> None:
    bucket = MarkedBucket()
    bucket.mark_owner("0123456789abcdef")
    with pytest.raises(StoreInUse, match="another Dockyard installation"):
        check_owner(bucket, facts, claim=True)
    assert bucket.mark == "0123456789abcdef"  # left alone


def test_check_without_claim_leaves_an_unmarked_store_unmarked(facts: ClusterFacts) -> None:
    bucket = MarkedBucket()
    assert check_owner(bucket, facts, claim=False) == ""
    assert bucket.mark is None
