"""The one way the node writes a file: atomically, durably, with its mode from
the start.

`write_file` writes a temporary file in the target's directory, created with
the final mode (so a private key is never readable by others, not even for a
moment), fsyncs it, renames it over the target and fsyncs the directory: a
reader sees the old content or the new one, never a part, and after a crash the
new one is on disk once `write_file` returned. On any error the temporary file
is removed and the target is left as it was.

`private_directory` makes a directory only its owner can enter (0700), and
tightens one that exists.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE = 0o600
PUBLIC = 0o644
PRIVATE_DIRECTORY = 0o700


def write_file(
    path: Path,
    data: bytes,
    *,
    mode: int = PRIVATE,
    make_parents_mode: int | None = PRIVATE_DIRECTORY,
    overwrite: bool = True,
) -> None:
    """Write `data` to `path` atomically and durably, the file with `mode`.

    Missing parent directories are made with `make_parents_mode` (None: they
    must exist). With `overwrite=False` an existing `path` is never replaced
    (`FileExistsError`), and the check and the write are one atomic step."""
    directory = path.parent
    if make_parents_mode is not None:
        _make_directories(directory, make_parents_mode)
    tmp, fd = _create_temporary(directory, path.name, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if `path` exists: never clobbers it
            tmp.unlink()
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(directory)


def private_directory(path: Path) -> None:
    """Make `path` (and missing parents) a 0700 directory; tighten it if it exists."""
    _make_directories(path, PRIVATE_DIRECTORY)
    os.chmod(path, PRIVATE_DIRECTORY)


def _make_directories(path: Path, mode: int) -> None:
    """`path` and its missing parents, each made with `mode` (existing ones are left as they are)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=mode, exist_ok=True)


def _create_temporary(directory: Path, name: str, mode: int) -> tuple[Path, int]:
    """A new file beside the target, created with `mode` (O_EXCL: ours alone), open for writing."""
    while True:
        tmp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
