"""Shared fixtures: a clock the tests move, a node on each database backend,
and bearer tokens for users of each role on that node.

Storage-touching tests take the `db_url` fixture, parametrized over SQLite (a
file in the test's tmp dir) and PostgreSQL (a fresh schema per test in the
database named by GCN_TEST_POSTGRES_URL). Without that variable, PostgreSQL
cases are skipped locally; under CI=true they fail instead, so CI can never
pass without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from node.app import NodeApp
from node.bootstrap import init_node
from node.logging import configure_logging
from node.storage.users import Role, UserStore
from node.testing.clock import ManualClock

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get("GCN_TEST_POSTGRES_URL", "")


@pytest.fixture(scope="session", autouse=True)
def _logs_to_stderr() -> None:
    configure_logging("console", "info")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


def _postgres_schema_url() -> Iterator[str]:
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set GCN_TEST_POSTGRES_URL")
        pytest.skip("GCN_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as e:  # the server is down: skip locally, fail in CI
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL unreachable: {e}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'node.sqlite'}"
    else:
        yield from _postgres_schema_url()


def make_node(
    directory: Path,
    clock: ManualClock,
    db_url: str,
    *,
    node_id: str = "KE",
    country: str = "KE",
    role: str = "national",
) -> NodeApp:
    config = init_node(
        directory,
        node_id=node_id,
        name=f"{node_id} customs",
        role=role,
        country=country,
        listen="127.0.0.1:0",
        database_url=db_url,
        clock=clock,
    )
    return NodeApp.open(config, clock)


@pytest.fixture
def app(tmp_path: Path, clock: ManualClock, db_url: str) -> Iterator[NodeApp]:
    node = make_node(tmp_path / "ke", clock, db_url)
    yield node
    node.close()


@pytest.fixture
def users(app: NodeApp, clock: ManualClock) -> UserStore:
    return UserStore(app.db, clock)


@pytest.fixture
def officer_token(users: UserStore, clock: ManualClock) -> str:
    return users.add("officer", Role.OFFICER, clock())


@pytest.fixture
def analyst_token(users: UserStore, clock: ManualClock) -> str:
    return users.add("analyst", Role.ANALYST, clock())


@pytest.fixture
def admin_token(users: UserStore, clock: ManualClock) -> str:
    return users.add("admin", Role.ADMIN, clock())
