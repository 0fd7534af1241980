"""The people who use this node, and the bearer tokens that prove who they are.

An admin of the node creates a user with a role (`gcn users add`); the node
answers with a token, shown once. Every NodeService call carries it as
``authorization: Bearer gcn_…`` metadata.

Tokens are stored as their SHA-256 only. A token is 256 bits from `secrets`,
not a password a person chose, so there is nothing to guess or to look up in a
dictionary: a slow, salted password hash (bcrypt, scrypt, Argon2) would only
make every call slower without making a stolen table any weaker. A fast hash
keeps the lookup one indexed equality on `token_hash`, and whoever reads the
table still cannot present a token.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from node.clock import Clock, system_clock
from node.errors import ConflictError, NotFoundError, UnauthenticatedError, ValidationError
from node.storage.db import Database
from node.storage.models import UserRow

TOKEN_PREFIX = "gcn_"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
# `last_used_at` is written at most this often per user, not on every call.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Authenticated tokens are remembered this long (by hash, per database), so a
# call costs no database read. Removing or rotating a user in this process
# takes effect at once; from another process (`gcn users remove` while the node
# runs), within this time.
AUTH_CACHE_SECONDS = 10.0
UNKNOWN_TOKEN = "unknown or revoked token"


class Role(enum.StrEnum):
    """Roles, from least to most trusted; each may do what the ones below it may."""

    ANALYST = "analyst"
    OFFICER = "officer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(r.value for r in cls)
            raise ValidationError("role", f"must be one of {choices} (got {value!r})") from None


_RANK = {Role.ANALYST: 1, Role.OFFICER: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created_at: datetime
    token_issued_at: datetime
    last_used_at: datetime | None


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ValidationError(
            "name",
            "must be 2 to 64 characters of a-z, 0-9, '.', '_' or '-', "
            f"starting with a letter or digit (got {name!r})",
        )
    return name


def _user(row: UserRow) -> User:
    return User(row.name, Role(row.role), row.created_at, row.token_issued_at, row.last_used_at)


class UserStore:
    """Users and their tokens in the node's database. `clock` is read when a
    token is used (for `last_used_at`); the other operations take `now`."""

    # digest -> (user, last_used_at, cached at), per database URL, shared by every
    # UserStore of the process so that one store's remove/rotate reaches the others.
    _cache: ClassVar[dict[str, dict[str, tuple[User, datetime | None, float]]]] = {}
    _cache_lock: ClassVar[threading.Lock] = threading.Lock()
    _generation: ClassVar[dict[str, int]] = defaultdict(int)

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock
        with self._cache_lock:
            self._mine = self._cache.setdefault(db.url, {})

    def _forget(self) -> None:
        with self._cache_lock:
            self._mine.clear()
            self._generation[self.db.url] += 1

    def add(self, name: str, role: Role | str, now: datetime) -> str:
        """Create a user; returns its token, which is not stored and cannot be shown again."""
        check_name(name)
        role = Role.parse(role) if not isinstance(role, Role) else role
        token = new_token()
        try:
            with self.db.begin() as s:
                if s.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
                    raise ConflictError(f"user {name} already exists")
                s.add(
                    UserRow(
                        name=name,
                        role=role.value,
                        token_hash=token_hash(token),
                        created_at=now,
                        token_issued_at=now,
                        last_used_at=None,
                    )
                )
        except IntegrityError as e:  # a concurrent add of the same name
            raise ConflictError(f"user {name} already exists") from e
        return token

    def list(self) -> list[User]:
        with self.db.read() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]

    def get(self, name: str) -> User:
        with self.db.begin() as s:
            row = s.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
            if row is None:
                raise NotFoundError(f"no user {name}")
            return _user(row)

    def remove(self, name: str) -> None:
        """Delete a user; its token stops working on the next call."""
        with self.db.begin() as s:
            if s.execute(delete(UserRow).where(UserRow.name == name)).rowcount == 0:  # type: ignore[attr-defined]
                raise NotFoundError(f"no user {name}")
        self._forget()

    def rotate(self, name: str, now: datetime) -> str:
        """Give a user a new token; the old one stops working at once."""
        token = new_token()
        with self.db.begin() as s:
            row = s.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
            if row is None:
                raise NotFoundError(f"no user {name}")
            row.token_hash = token_hash(token)
            row.token_issued_at = now
        self._forget()
        return token

    def authenticate(self, token: str) -> User:
        """The user a token belongs to, or UnauthenticatedError. The row is
        found by its indexed hash; the hash found is then compared with
        `hmac.compare_digest`, so the final check takes the same time wherever
        two hashes differ. (A timing leak in the index lookup would only tell
        an attacker about hashes of tokens they already hold.)"""
        digest = token_hash(token)
        del token  # from here on, not even a traceback's locals can show it
        cached = self._mine.get(digest)
        hit = cached is not None and time.monotonic() - cached[2] < AUTH_CACHE_SECONDS
        generation = -1
        if cached is not None and hit:
            user, last_used, cached_at = cached
        else:
            with self._cache_lock:
                generation = self._generation[self.db.url]
            user, last_used = self._lookup(digest)
            cached_at = time.monotonic()  # an entry expires AUTH_CACHE_SECONDS after its lookup
        now = self.clock()
        if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
            # At most once a minute: the only write on the authentication path.
            with self.db.begin() as s:
                s.execute(update(UserRow).where(UserRow.token_hash == digest).values(last_used_at=now))
            last_used = now
        with self._cache_lock:
            # A remove/rotate that ran while we looked up must not be undone by caching.
            if hit or self._generation[self.db.url] == generation:
                self._mine[digest] = (user, last_used, cached_at)
        return user

    def _lookup(self, digest: str) -> tuple[User, datetime | None]:
        with self.db.read() as s:
            row = s.scalars(select(UserRow).where(UserRow.token_hash == digest)).first()
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                raise UnauthenticatedError(UNKNOWN_TOKEN)
            return _user(row), row.last_used_at
