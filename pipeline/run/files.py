"""Files a stage writes and reads: atomic writes, JSON with stable bytes, sha256."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write to a temporary file and rename: a crash or a full disk never leaves a torn file behind
    (the old file, if any, stays whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)

def write_json(path: str | Path, obj) -> None:
    """Sorted keys and a trailing newline: the same data always gives the same bytes. Atomic."""
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, default=_plain) + "\n").encode())

def read_json(path: str | Path):
    return json.loads(Path(path).read_text())

def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

def _plain(o):
    if hasattr(o, "item"):
        return o.item()      # numpy scalars
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def write_generated(path: str | Path, text: str, check: bool, command: str) -> int:
    """A generated file (dvc.yaml, docs/settings.md): write it, or with check, exit 1 when it differs
    from what `command` would write."""
    import sys
    path = Path(path)
    if check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is stale: run `{command}`", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path}", file=sys.stderr)
    return 0
