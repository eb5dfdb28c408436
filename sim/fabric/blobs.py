"""Content-addressed file storage, one store per peer: the patch files themselves.

The ledger holds a patch's SHA-256 and size, never its bytes (blocks stay
small, and a client can check what it got against a record every peer agreed
on). The bytes live here, addressed by their SHA-256 in lower-case hex, so
any peer can serve any file and a client never has to trust the server it
happened to pick.

A store returns whatever it holds without checking it: a peer whose disk or
owner corrupted a file is exactly what the client-side check exists for.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import BinaryIO, Protocol

__all__ = ["BlobStore", "DirectoryBlobStore", "MemoryBlobStore", "sha256_hex"]

_DIGEST = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ValueError(f"blob address must be 64 lower-case hex digits, got {digest!r}")
    return digest


class BlobStore(Protocol):
    """Bytes by SHA-256: ``put`` returns the address, ``open`` streams the content."""

    def put(self, data: bytes) -> str: ...

    def has(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int | None: ...

    def open(self, digest: str) -> BinaryIO | None: ...

    def digests(self) -> list[str]: ...


class MemoryBlobStore:
    """A store in a dict: for simulations and tests."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        self._blobs[digest] = bytes(data)
        return digest

    def has(self, digest: str) -> bool:
        return _check_digest(digest) in self._blobs

    def size(self, digest: str) -> int | None:
        blob = self._blobs.get(_check_digest(digest))
        return None if blob is None else len(blob)

    def open(self, digest: str) -> BinaryIO | None:
        blob = self._blobs.get(_check_digest(digest))
        return None if blob is None else io.BytesIO(blob)

    def digests(self) -> list[str]:
        return sorted(self._blobs)

    def replace(self, digest: str, data: bytes) -> None:
        """Overwrite a blob *without* rehashing: how tests model a corrupted disk."""
        self._blobs[_check_digest(digest)] = bytes(data)


class DirectoryBlobStore:
    """A store on disk, ``<root>/<first two hex digits>/<digest>``, written atomically."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        digest = _check_digest(digest)
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        return digest

    def has(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def size(self, digest: str) -> int | None:
        path = self._path(digest)
        return path.stat().st_size if path.is_file() else None

    def open(self, digest: str) -> BinaryIO | None:
        path = self._path(digest)
        return open(path, "rb") if path.is_file() else None

    def remove(self, digest: str) -> None:
        """Delete a blob (``sim.fabric.filegc`` removes files no release refers to)."""
        self._path(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        """The blobs this store holds, never a file reached through a symbolic link.

        The sweep removes what this lists: a linked fan-out folder (or file)
        would let it delete files outside the store.
        """
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.glob("??/*")
            if _DIGEST.fullmatch(p.name)
            and not p.parent.is_symlink()
            and not p.is_symlink()
            and p.is_file()
        )
