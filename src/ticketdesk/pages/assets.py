"""The pages' stylesheet and script, served under names that carry a hash of their content.

A browser may keep a file named by its content for ever: a new version has a new name.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).parent / "static"
PREFIX = "/app/static/"
FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    content: bytes
    media_type: str


class Assets:
    def __init__(self, folder: Path = STATIC) -> None:
        self.served: dict[str, Asset] = {}
        self.urls: dict[str, str] = {}
        for path in sorted(folder.iterdir()):
            if not path.is_file():
                continue
            content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()[:12]
            name = f"{path.stem}.{digest}{path.suffix}"
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type.endswith("javascript"):
                media_type += "; charset=utf-8"
            self.served[name] = Asset(content, media_type)
            self.urls[path.name] = PREFIX + name

    def url(self, name: str) -> str:
        return self.urls[name]
