"""Repository search (`docker search`) and stars: who sees what.

- **Search** is open to anyone, anonymous callers included, over the repositories the caller may
  pull: anonymous callers and strangers see public ones only, members their namespaces', and
  administrators all. A private repository never appears to someone who may not pull it.
- **Stars**: a signed-in user stars a repository they may see; the count is public wherever the
  repository is.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.core.access import DEFAULT_NAMESPACE, namespace_of
from dockyard.core.names import validate_name
from dockyard.management.base import Actor, _ServiceBase, checked
from dockyard.management.errors import Invalid, NotFound
from dockyard.meta.search import MAX_QUERY, Found, SearchStore

MAX_CANDIDATES = 2000  # matches ranked in SQL before the visibility filter: a search answers at most this many
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class SearchPage:
    query: str
    page: int
    page_size: int
    total: int
    results: list[Found]

    @property
    def pages(self) -> int:
        return (self.total + self.page_size - 1) // self.page_size


def is_official(name: str) -> bool:
    """Docker Hub's "official images" are its library/ namespace: here too."""
    return namespace_of(name) == DEFAULT_NAMESPACE


class SearchUseCases(_ServiceBase):
    def _search_store(self) -> SearchStore:
        if self.search_store is None:
            raise NotFound("search is not available on this server")
        return self.search_store

    def search(self, actor: Actor, query: str, page_size: int = 25, page: int = 1) -> SearchPage:
        query = query.strip()
        if not query or len(query) > MAX_QUERY:
            raise Invalid(f"q: a search term of 1 to {MAX_QUERY} characters")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise Invalid(f"n: 1 to {MAX_PAGE_SIZE} results per page")
        if page < 1:
            raise Invalid("page: 1 or more")
        found = self._search_store().candidates(query, MAX_CANDIDATES)
        if not actor.is_admin:
            visible = set(self.auth.visible(actor.principal, [f.name for f in found]))
            found = [f for f in found if f.name in visible]
        start = (page - 1) * page_size
        return SearchPage(query, page, page_size, len(found), found[start:start + page_size])

    def _starred_repository(self, actor: Actor, name: str) -> None:
        checked(validate_name, name)
        if self.queries.repository(name) is None or not (actor.is_admin or self.auth.visible(actor.principal, [name])):
            raise NotFound(f"repository {name!r} not found")

    def stars(self, actor: Actor, name: str) -> tuple[int, bool]:
        """(how many users starred it, whether the caller did)."""
        self._authenticated(actor)
        self._starred_repository(actor, name)
        return self._search_store().stars(name, actor.user.username if actor.user else None)

    def star(self, actor: Actor, name: str, on: bool) -> tuple[int, bool]:
        user = self._writer(actor)
        self._starred_repository(actor, name)
        self._search_store().star(name, user.username, on)
        return self._search_store().stars(name, user.username)
