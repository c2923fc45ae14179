"""The local cache of remote folders: each fetched once per version, the whole cache bounded.

Layout: ``$RAY_VLM_CACHE`` (default ``~/.cache/ray_vlm``) ``/<key>/<name>``, one entry ``<key>``
per remote folder and version (``<key>``: 16 hex digits; nothing else under the root is touched).
``cached(target, fill)`` fills a missing entry in a temporary folder beside its place and renames it
in, so no reader sees half of one; one process of a machine fills it (an exclusive ``flock`` on its
``.fill``), the others wait and read that copy.

The cache holds at most ``RAY_VLM_CACHE_MAX_GB`` (default: half the disk it is on). After each new
entry, entries are removed least recently used first until it fits, never one in use: a process
that got an entry from ``cached`` holds a shared ``flock`` on its ``.lock`` until it exits (a Serve
replica maps its model's files all its life), and removal takes that lock exclusively, without
waiting. An entry is renamed aside before it is deleted, so a reader arriving meanwhile fetches a
new copy instead of reading a half-deleted one. Sizes count the blocks files use on disk (a copy
with holes, as consolidation downloads, counts what it holds).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from ray_vlm.storage.filesystems import StorageError

CACHE_ENV = "RAY_VLM_CACHE"
MAX_GB_ENV = "RAY_VLM_CACHE_MAX_GB"
LOCK = ".lock"
FILL = ".fill"
ENTRY = re.compile(r"[0-9a-f]{16}")
"""An entry's name (``Location.cache_path``'s key): nothing else under the root is removed."""
TRASH = ".removing."

_HELD: dict[Path, int] = {}  # entry -> this process's descriptor of its lock (shared flock)


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ray_vlm")


def max_bytes(root: Path) -> int:
    """``RAY_VLM_CACHE_MAX_GB`` in bytes; half the size of ``root``'s disk when unset."""
    value = os.environ.get(MAX_GB_ENV)
    if value:
        try:
            return int(float(value) * 2**30)
        except ValueError:
            raise StorageError(f"{MAX_GB_ENV}={value}: not a number of GB (e.g. 100)") from None
    return shutil.disk_usage(root).total // 2


def cached(target: Path, fill: Callable[[Path], None]) -> Path:
    """``target`` (``<root>/<key>/<name>``), filled by ``fill(tmp)`` into an empty folder first if
    missing, held in use by this process; the cache is trimmed after a new entry."""
    entry = target.parent
    while not _hold(entry):  # the entry was being removed: start again on a fresh one
        pass
    os.utime(entry / LOCK)  # used now (the order of removal)
    max_bytes(entry.parent)  # a bad bound is said before a download, not after
    if target.is_dir():
        return target
    with open(entry / FILL, "a") as filling:  # one process fills; the others wait, then read
        fcntl.flock(filling, fcntl.LOCK_EX)
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(dir=entry, prefix=f".{target.name}."))
        try:
            fill(tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    trim(entry.parent)
    return target


def _hold(entry: Path) -> bool:
    """Take a shared lock on ``entry`` for this process's life; False if it vanished meanwhile."""
    if entry in _HELD:
        return True
    entry.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(entry / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        return False
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a trim is removing this entry
    try:
        same = os.fstat(fd).st_ino == os.stat(entry / LOCK).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return False
    _HELD[entry] = fd
    return True


def _size(entry: Path) -> int:
    total = 0
    for path in entry.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                total += path.stat().st_blocks * 512
    return total


def _last_used(entry: Path) -> float:
    with contextlib.suppress(OSError):
        return (entry / LOCK).stat().st_mtime
    return entry.stat().st_mtime


def _remove_unused(entry: Path) -> bool:
    """Delete ``entry`` unless some process holds it; whether it was deleted."""
    try:
        fd = os.open(entry / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    trash = entry.with_name(f"{TRASH}{uuid.uuid4().hex}")
    try:
        entry.rename(trash)
    finally:
        os.close(fd)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def trim(root: Path | None = None) -> int:
    """Remove unused entries, least recently used first, until the cache fits its bound; returns
    the bytes it still holds (over the bound only when entries in use need it, said on stderr)."""
    root = root or cache_root()
    if not root.is_dir():
        return 0
    entries = []
    for entry in root.iterdir():
        if entry.name.startswith(TRASH):  # left by a process that died while removing it
            shutil.rmtree(entry, ignore_errors=True)
        elif ENTRY.fullmatch(entry.name) and entry.is_dir():
            with contextlib.suppress(OSError):
                entries.append((_last_used(entry), entry, _size(entry)))
    total, limit = sum(size for _, _, size in entries), max_bytes(root)
    for _, entry, size in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if entry not in _HELD and _remove_unused(entry):
            total -= size
    if total > limit:
        print(
            f"warning: the ray_vlm cache {root} holds {total / 2**30:.1f} GB in use, over "
            f"{MAX_GB_ENV}={limit / 2**30:.1f}; raise it or free the disk",
            file=sys.stderr,
        )
    return total
