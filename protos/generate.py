"""Generate the Python code for the wire contract in protos/gcn/v1.

    python protos/generate.py          # (re)generate
    python protos/generate.py --check  # fail if the committed code is stale

The generated modules (``*_pb2.py``, ``*_pb2_grpc.py`` and their ``.pyi`` type
stubs) are committed beside the ``.proto`` files so that an installed gcn needs
no compiler; CI runs ``--check`` so they can never drift from the sources.
Never edit them by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = HERE / "gcn" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _generate_into(out: Path) -> None:
    protos = sorted(str(p.relative_to(HERE)) for p in PACKAGE_DIR.glob("*.proto"))
    include = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "protoc",
        f"-I{HERE}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    # protoc finds the mypy plugins on PATH; they sit beside this interpreter.
    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    old = os.getcwd()
    os.chdir(HERE)
    try:
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
    finally:
        os.chdir(old)


def _generated(directory: Path) -> dict[str, Path]:
    return {p.name: p for p in directory.iterdir() if any(p.name.endswith(s) for s in GENERATED_SUFFIXES)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _generate_into(out)
        fresh = _generated(out / "gcn" / "v1")
        if ns.check:
            current = _generated(PACKAGE_DIR)
            stale = sorted(
                name
                for name in fresh.keys() | current.keys()
                if name not in fresh
                or name not in current
                or not filecmp.cmp(fresh[name], current[name], shallow=False)
            )
            if stale:
                print("generated protobuf code is stale: " + ", ".join(stale), file=sys.stderr)
                print("run: python protos/generate.py", file=sys.stderr)
                return 1
            print(f"generated protobuf code is current ({len(fresh)} files)")
            return 0
        for old in _generated(PACKAGE_DIR).values():
            old.unlink()
        for name, path in fresh.items():
            shutil.copyfile(path, PACKAGE_DIR / name)
        print(f"generated {len(fresh)} files into {PACKAGE_DIR.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
