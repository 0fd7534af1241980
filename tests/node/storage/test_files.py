"""Tests of node.storage.files: the one way the node writes a file.

The story: a key, a certificate or a state file is written while a reader may
look and the machine may stop; the reader sees the old file or the new one,
a private file is never readable by others, and a failed write leaves the old
file and no debris."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from node.storage.files import PUBLIC, private_directory, write_file


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_private_by_default_and_its_new_parents_0700(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "key.pem"

    write_file(path, b"secret")

    assert path.read_bytes() == b"secret"
    assert mode_of(path) == 0o600
    assert mode_of(tmp_path / "a") == 0o700 and mode_of(tmp_path / "a" / "b") == 0o700
    assert os.listdir(path.parent) == ["key.pem"]


def test_a_public_file_gets_its_mode(tmp_path: Path) -> None:
    write_file(tmp_path / "ca.pem", b"cert", mode=PUBLIC)

    assert mode_of(tmp_path / "ca.pem") == 0o644


def test_the_temporary_file_has_the_final_mode_from_its_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_fsync = os.fsync

    def fsync_and_look(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_and_look)
    write_file(tmp_path / "key.pem", b"secret")

    assert seen == [0o600]


def test_replacing_swaps_the_whole_file_and_keeps_the_new_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_file(path, b"old old old", mode=PUBLIC)
    old_inode = path.stat().st_ino

    write_file(path, b"new")

    assert path.read_bytes() == b"new"
    assert path.stat().st_ino != old_inode  # renamed over, not rewritten in place
    assert mode_of(path) == 0o600
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    write_file(path, b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_file(path, b"new")

    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_failed_rename_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_bytes(b"x")

    with pytest.raises(OSError):
        write_file(target, b"data")

    assert sorted(os.listdir(tmp_path)) == ["taken"]
    assert os.listdir(target) == ["inside"]


def test_without_overwrite_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    write_file(path, b"first", overwrite=False)

    with pytest.raises(FileExistsError):
        write_file(path, b"second", overwrite=False)

    assert path.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["key.pem"]
    assert path.stat().st_nlink == 1


def test_missing_parents_are_refused_when_asked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_file(tmp_path / "absent" / "f", b"x", make_parents_mode=None)

    assert not (tmp_path / "absent").exists()


def test_a_private_directory_is_made_or_tightened(tmp_path: Path) -> None:
    made = tmp_path / "new" / "keys"
    private_directory(made)
    opened = tmp_path / "open"
    opened.mkdir()
    opened.chmod(0o755)

    private_directory(opened)

    assert mode_of(made) == 0o700
    assert mode_of(opened) == 0o700
