"""Fixtures of the fault stories: the federation made once per session with the
real CLI, a fresh copy of it per story, its processes killed (whole process
groups) whatever happens, and the servers' logs printed when a story fails."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.fault.harness import Federation, federation_from, make_template


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every story spawns processes: marked `slow` (they still run in the normal run)."""
    for item in items:
        if "tests/fault/" in item.nodeid:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fault-template")
    make_template(base)
    return base


@pytest.fixture(scope="session")
def figures_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fault-figures")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    report = yield
    if call.when == "call":
        item.stash[_FAILED] = bool(getattr(report, "failed", False))
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def fed(template: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Federation]:
    federation = federation_from(template, tmp_path / "federation")
    try:
        yield federation
    finally:
        federation.close()
        if request.node.stash.get(_FAILED, True):
            print(f"\n{federation.logs()}")
