"""The caches unauthenticated callers can fill stay bounded, and evict one entry at a time."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.auth import tokens as tokens_module
from dockyard.auth.bounded import BoundedCache
from dockyard.auth.service import ACCESS_CACHE_ENTRIES, AuthService
from dockyard.auth.tokens import InvalidToken, TokenService
from dockyard.core.access import RepositoryFacts, namespace_of
from dockyard.core.scopes import Scope


def test_bounded_cache_evicts_the_least_recently_used() -> None:
    cache: BoundedCache[str, int] = BoundedCache(3)
    for i, key in enumerate("abc"):
        cache.put(key, i)
    assert cache.get("a") == 0  # a is now the most recent
    cache.put("d", 3)
    assert cache.get("b") is None and cache.get("a") == 0 and cache.get("c") == 2 and cache.get("d") == 3
    assert len(cache) == 3
    cache.pop("a")
    cache.clear()
    assert len(cache) == 0


def test_the_token_cache_holds_at_most_its_bound(monkeypatch: object) -> None:
    monkeypatch.setattr(tokens_module, "VERIFIED_TOKENS_MAX", 100)  # type: ignore[attr-defined]
    service = TokenService(ec.generate_private_key(ec.SECP256R1()), "dockyard", "dockyard", 300, 3600)
    minted = [service.issue("", [])[0] for _ in range(250)]
    for token in minted:
        assert service.verify(token).subject == ""
    assert len(service._cache) == 100
    assert service.verify(minted[0]).subject == ""  # evicted: verified again, not refused
    assert len(service._cache) == 100


def test_an_expired_cached_token_is_refused_and_forgotten() -> None:
    service = TokenService(ec.generate_private_key(ec.SECP256R1()), "dockyard", "dockyard", 300, 3600)
    token = service.issue("", [])[0]
    access = service.verify(token)
    key = next(iter(service._cache._entries))
    service._cache.put(key, type(access)(access.subject, access.access, time.time() - 1))
    try:
        service.verify(token)
    except InvalidToken:
        pass
    else:
        raise AssertionError("an expired token was accepted")
    assert len(service._cache) == 0


class Namespaces:
    lookups = 0

    def facts(self, name: str) -> RepositoryFacts:
        self.lookups += 1
        return RepositoryFacts(name=name, namespace=namespace_of(name), namespace_exists=False, exists=False,
                               public=False, auto_create=False)


def test_the_access_cache_is_bounded() -> None:
    namespaces = Namespaces()
    auth = AuthService(None, None, namespaces, None)  # type: ignore[arg-type]
    for i in range(ACCESS_CACHE_ENTRIES + 5_000):
        auth.allowed(None, Scope("repository", f"team/app{i}", ("pull",)))
    assert len(auth._access) == ACCESS_CACHE_ENTRIES
    before = namespaces.lookups
    auth.allowed(None, Scope("repository", f"team/app{ACCESS_CACHE_ENTRIES + 4_999}", ("pull",)))
    assert namespaces.lookups == before  # the recent ones are still there
