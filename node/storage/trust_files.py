"""The node's trust files, under `<data_dir>/trust/` (0700): `root-keys.json`,
the root public keys pinned at set-up, and `directory.pb`, the newest signed
directory the node verified. Both are written atomically (`files.write_file`);
what may be written is decided elsewhere (`node.federation_state` accepts a
directory only through `crypto.directory.TrustedDirectory`)."""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import json_format

from gcn.v1 import directory_pb2 as dir_pb
from node.storage.files import PUBLIC, private_directory, write_file

ROOT_KEYS_FILE = "root-keys.json"
DIRECTORY_FILE = "directory.pb"


class TrustFiles:
    def __init__(self, path: Path) -> None:
        self.path = path

    def pin(self, root_keys: list[dir_pb.DirectoryKey]) -> None:
        private_directory(self.path)
        data = "[" + ",\n".join(json_format.MessageToJson(k, indent=None) for k in root_keys) + "]\n"
        write_file(self.path / ROOT_KEYS_FILE, data.encode(), mode=PUBLIC)

    def pinned(self) -> list[dir_pb.DirectoryKey]:
        try:
            raw = json.loads((self.path / ROOT_KEYS_FILE).read_text())
        except FileNotFoundError:
            return []
        return [json_format.ParseDict(k, dir_pb.DirectoryKey()) for k in raw]

    def held(self) -> dir_pb.SignedDirectory | None:
        try:
            return dir_pb.SignedDirectory.FromString((self.path / DIRECTORY_FILE).read_bytes())
        except FileNotFoundError:
            return None

    def store(self, signed: dir_pb.SignedDirectory) -> None:
        write_file(self.path / DIRECTORY_FILE, signed.SerializeToString(), mode=PUBLIC)

    def changed_since(self, mtime: float) -> float | None:
        """The directory file's mtime if it changed after `mtime` (None: not)."""
        try:
            now = (self.path / DIRECTORY_FILE).stat().st_mtime
        except FileNotFoundError:
            return None
        return now if now != mtime else None
