"""Where attachments' contents are kept: files named by their SHA-256, outside any web root.

Content-addressed: the same bytes are kept once, however often they are attached, and a
name can never be chosen by a client. `Storage` is what the service needs of a place to
keep them; `LocalStorage` keeps them under a directory (object storage would be another
implementation of the same four methods).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    def put(self, data: bytes) -> str:
        """Keep the bytes; their SHA-256 (hex), by which they are found again."""

    def path(self, sha256: str) -> Path:
        """A file with the content, to be served."""

    def delete(self, sha256: str) -> None: ...

    def older_than(self, seconds: float) -> Iterator[str]:
        """The hashes of contents last stored more than `seconds` ago."""


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if target.exists():
            os.utime(target)  # stored again now: a sweep must not take it
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(name, 0o640)
            os.replace(name, target)  # whole or not at all
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return sha256

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def older_than(self, seconds: float) -> Iterator[str]:
        if not self.root.is_dir():
            return
        cutoff = time.time() - seconds
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for file in folder.iterdir():
                if not file.name.startswith(".") and file.stat().st_mtime < cutoff:
                    yield file.name
