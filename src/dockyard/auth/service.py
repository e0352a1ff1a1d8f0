"""Authentication: who is calling (Basic credentials or a Bearer token), and token issuing."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.auth import policy
from dockyard.auth.passwords import VerifiedCache, verify_password
from dockyard.auth.tokens import AccessToken, InvalidToken, TokenService
from dockyard.core.scopes import Scope
from dockyard.meta.users import User, UserStore


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: a user (Basic) or the holder of a token."""

    username: str | None
    user: User | None = None
    token: AccessToken | None = None

    def may(self, type_: str, name: str, action: str) -> bool:
        if self.token is not None:
            return self.token.allows(type_, name, action)
        return action in policy.allowed_actions(self.user, Scope(type_, name, (action,)))


ANONYMOUS = Caller(username=None)


class AuthService:
    def __init__(self, users: UserStore, tokens: TokenService) -> None:
        self.users = users
        self.tokens = tokens
        self._verified = VerifiedCache()

    def check_password(self, username: str, password: str) -> User | None:
        """The active user with these credentials, or None. Takes constant time on failure."""
        user = self.users.get(username)
        if user is not None and self._verified.check(username, user.password_hash, password):
            return None if user.disabled else user
        ok = verify_password(user.password_hash if user else None, password)
        if not ok or user is None:
            return None
        self._verified.remember(username, user.password_hash, password)
        return None if user.disabled else user

    def caller_from_token(self, token: str) -> Caller:
        """Raises InvalidToken."""
        access = self.tokens.verify(token)
        return Caller(username=access.subject, token=access)

    def issue(self, user: User | None, scopes: list[Scope]) -> tuple[str, int, list[Scope]]:
        granted = policy.grant(user, scopes)
        token, ttl = self.tokens.issue(user.username if user else "", granted)
        return token, ttl, granted

    def user_from_refresh(self, refresh_token: str) -> User | None:
        try:
            username = self.tokens.verify_refresh(refresh_token)
        except InvalidToken:
            return None
        user = self.users.get(username)
        return user if user is not None and not user.disabled else None
