"""Bundles by content: the head packs each converted bundle once into Ray's object store; a node's agent
fetches it the first time a worker of it is placed there and keeps it in its own cache folder.

A bundle folder's name (under artifacts/bundles) is derived from the artifact digest and the conversion
options, so the name is the content key: a node that has the folder never fetches it again, and conversion
runs once, on the head, for the whole cluster.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tarfile
from pathlib import Path
from typing import Any


def pack(bundle_dir: str) -> bytes:
    """The bundle folder as an uncompressed tar (models are already dense; gzip would cost seconds)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(bundle_dir, arcname=".")
    return buffer.getvalue()


def unpack(data: bytes, target: Path) -> None:
    """Into `target` atomically: a half-written folder is never taken for a cached bundle."""
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(partial, filter="data")  # refuses links and paths out of the folder
    try:
        partial.rename(target)
    except OSError:  # another fetch of the same bundle finished first
        shutil.rmtree(partial, ignore_errors=True)


class BundleShipper:
    """The head's side: one object-store copy per bundle, made on first need and kept while the server
    runs (every node's first fetch of it reads that copy)."""

    def __init__(self) -> None:
        self._refs: dict[str, Any] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def ref_for(self, bundle_dir: str) -> Any:
        name = Path(bundle_dir).name
        async with self._locks.setdefault(name, asyncio.Lock()):
            if name not in self._refs:
                import ray

                data = await asyncio.to_thread(pack, bundle_dir)
                self._refs[name] = await asyncio.to_thread(ray.put, data)
            return self._refs[name]


class BundleCache:
    """A node's side (in its agent): bundle name -> folder on this node's disk, fetched at most once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fetches = 0
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError(f"not a bundle name: {name!r}")
        return self.root / name

    async def ensure(self, name: str, refs: list[Any]) -> tuple[str, bool]:
        """(folder, fetched now). `refs` holds the object ref in a list, so Ray passes it unresolved and
        the bytes cross the network only when the folder is missing."""
        target = self.path(name)
        async with self._locks.setdefault(name, asyncio.Lock()):
            if target.is_dir():
                return str(target), False
            data = await refs[0]
            self.root.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(unpack, data, target)
            self.fetches += 1
            return str(target), True
