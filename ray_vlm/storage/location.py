"""Where a run reads and writes: a local path, a shared-filesystem path or a URI, one API for all.

``Location.of(where)`` takes ``runs/a`` (made absolute here), ``/mnt/efs/runs/a`` or a URI such as
``s3://bucket/runs/a``, ``gs://bucket/runs/a`` or ``s3://bucket/a?endpoint_override=http://host:9000``
(any filesystem ``pyarrow.fs.FileSystem.from_uri`` resolves; the query holds pyarrow's options and
is kept on every location below it). A ``Location`` is a small pathlib-like value: ``/`` joins,
``read_text`` / ``write_bytes`` / ``append_text`` / ``iterdir`` / ``download`` / ``upload`` do
I/O through the pyarrow filesystem, which is also what Ray Train persists checkpoints with
(``RunConfig(storage_path=loc.path, storage_filesystem=loc.fs)``); on a local path through the
standard library (pyarrow is imported for URIs and ``fs`` only: ``filesystems``). It pickles as
its URI, so Ray tasks on any node reach the same files.

Credentials and endpoints come the standard way, read by pyarrow on each node: for S3 the
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_PROFILE`` variables or the node's
instance profile, ``AWS_ENDPOINT_URL`` (or ``?endpoint_override=``) for S3-compatible stores; for
GCS ``GOOGLE_APPLICATION_CREDENTIALS`` or the node's service account.

Libraries that need a directory on disk get ``local_copy()``: a local location is itself, a remote
one is fetched once into the bounded local cache (``storage.cache``), whole or not at all.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ray_vlm.storage import filesystems
from ray_vlm.storage.cache import cache_root, cached
from ray_vlm.storage.filesystems import FileType, StorageError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

BLOCK_BYTES = 1 << 20


def is_uri(where: str | os.PathLike) -> bool:
    """Whether ``where`` names a remote filesystem (``scheme://...``, not ``file://``)."""
    scheme = urlsplit(str(where)).scheme
    return "://" in str(where) and len(scheme) > 1 and scheme != "file"


@dataclass(frozen=True)
class Location:
    uri: str
    """An absolute local path, or ``scheme://netloc/path[?query]``."""

    @classmethod
    def of(cls, where: str | os.PathLike | Location) -> Location:
        """``where`` as a location; a relative local path is made absolute (this process's cwd)."""
        if isinstance(where, Location):
            return where
        text = os.fspath(where)
        if text.startswith("file://"):
            text = urlsplit(text).path
        if is_uri(text):
            scheme, netloc, path, query, _ = urlsplit(text)
            path = "/" + path.strip("/") if path.strip("/") else ""
            return cls(urlunsplit((scheme, netloc, path, query, "")))
        return cls(os.path.abspath(os.path.expanduser(text)))

    # ----------------------------------------------------------------- naming
    @property
    def is_local(self) -> bool:
        return not is_uri(self.uri)

    @property
    def fs(self) -> pafs.FileSystem:
        """The pyarrow filesystem (its local one for a local path)."""
        return filesystems.pyarrow_local() if self.is_local else self._remote()[0]

    @property
    def path(self) -> str:
        """The path on ``fs`` (``bucket/key`` for object stores, the absolute path locally)."""
        return self.uri if self.is_local else self._remote()[1]

    def _remote(self) -> tuple[pafs.FileSystem, str]:
        scheme, netloc, path, query, _ = urlsplit(self.uri)
        fs, prefix = filesystems.remote(scheme, netloc, query)
        return fs, f"{prefix}{path}" if prefix else path or "/"

    def __truediv__(self, name: str) -> Location:
        if self.is_local:
            return Location(str(Path(self.uri) / name))
        scheme, netloc, path, query, _ = urlsplit(self.uri)
        joined = PurePosixPath(path or "/") / name.strip("/")
        return Location(urlunsplit((scheme, netloc, str(joined), query, "")))

    @property
    def name(self) -> str:
        return PurePosixPath(urlsplit(self.uri).path if not self.is_local else self.uri).name

    @property
    def parent(self) -> Location:
        if self.is_local:
            return Location(str(Path(self.uri).parent))
        scheme, netloc, path, query, _ = urlsplit(self.uri)
        parent = str(PurePosixPath(path or "/").parent)
        return Location(urlunsplit((scheme, netloc, "" if parent == "/" else parent, query, "")))

    @property
    def local_path(self) -> Path:
        """The path on this machine; ``StorageError`` for a remote location."""
        if not self.is_local:
            raise StorageError(f"{self.uri}: a remote location has no local path (use local_copy)")
        return Path(self.uri)

    def __fspath__(self) -> str:
        return str(self.local_path)

    def __str__(self) -> str:
        return self.uri

    # ---------------------------------------------------------------- queries
    def info(self) -> pafs.FileInfo | filesystems.FileInfo:
        """``type`` (a ``FileType``), ``size`` (files), ``mtime_ns`` (where the store keeps one)."""
        local = self.is_local
        return filesystems.local_info(self.uri) if local else self.fs.get_file_info(self.path)

    def exists(self) -> bool:
        return self.info().type != FileType.NotFound

    def is_file(self) -> bool:
        return self.info().type == FileType.File

    def is_dir(self) -> bool:
        return self.info().type == FileType.Directory

    def size(self) -> int:
        return self.info().size

    def iterdir(self) -> list[Location]:
        """Entries directly under this folder, sorted by name (none when it is not a folder)."""
        if not self.is_dir():
            return []
        local = self.is_local
        names = os.listdir(self.uri) if local else filesystems.remote_names(self.fs, self.path)
        return [self / n for n in sorted(names)]

    # -------------------------------------------------------------------- I/O
    def _open(self, seekable: bool = False):
        """The file, open for reading: a stream, or a seekable file for ranged reads."""
        if self.is_local:
            return open(self.uri, "rb")
        return (self.fs.open_input_file if seekable else self.fs.open_input_stream)(self.path)

    def read_bytes(self) -> bytes:
        with self._open() as f:
            return f.read()

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def read_range(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` (one ranged read on object stores)."""
        with self._open(seekable=True) as f:
            f.seek(start)
            return f.read(end - start)

    def iter_lines(self) -> Iterator[bytes]:
        """The file's lines, each with its line ending, streamed in blocks."""
        with self._open() as f:
            rest = b""
            while block := f.read(BLOCK_BYTES):
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                yield from (line + b"\n" for line in lines)
            if rest:
                yield rest

    def mkdir(self) -> None:
        if self.is_local:  # object stores have no folders; keys create them
            os.makedirs(self.uri, exist_ok=True)

    def write_bytes(self, data: bytes) -> None:
        """Write the whole file at once, so that neither a reader nor a crash mid-write ever
        leaves it half written: locally a temporary file beside it, renamed over it; in a bucket
        one put (an object appears only whole)."""
        self.parent.mkdir()
        if not self.is_local:
            with self.fs.open_output_stream(self.path) as f:
                f.write(data)
            return
        tmp = os.path.join(self.parent.path, f".{self.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            with open(tmp, "xb") as f:  # the umask's permissions, as a plain write would have
                f.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def append_text(self, text: str) -> None:
        """Append ``text`` (object stores cannot append: the object is rewritten)."""
        if not self.is_local:
            self.write_text((self.read_text() if self.exists() else "") + text)
            return
        self.parent.mkdir()
        with open(self.uri, "ab") as f:
            f.write(text.encode("utf-8"))

    def delete(self) -> None:
        """Remove this file or folder tree (nothing when absent)."""
        kind = self.info().type
        if kind == FileType.Directory and self.is_local:
            shutil.rmtree(self.uri)
        elif kind == FileType.Directory:
            self.fs.delete_dir(self.path)
        elif kind == FileType.File and self.is_local:
            os.unlink(self.uri)
        elif kind == FileType.File:
            self.fs.delete_file(self.path)

    def download(self, dest: Path, skip: tuple[str, ...] = ()) -> Path:
        """Copy this folder to the local folder ``dest``, leaving out top-level entries named in
        ``skip``; returns ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        for entry in self.iterdir():
            if entry.name in skip:
                continue
            target = dest / entry.name
            if entry.is_dir():
                target.mkdir(exist_ok=True)
            _copy(entry, Location.of(target))
        return dest

    def upload(self, source: Path, last: str | None = None) -> Location:
        """Copy the local folder ``source`` to this location (files of the same name replaced);
        its entry ``last`` (a completion marker) only once everything else is there."""
        self.mkdir()
        entries = [source] if last is None else [e for e in source.iterdir() if e.name != last]
        for entry in [*entries, *([source / last] if last else [])]:
            _copy(Location.of(entry), self if entry == source else self / entry.name)
        return self

    # ------------------------------------------------------------ local cache
    def cache_path(self, version: str = "") -> Path:
        """Where ``local_copy`` keeps this remote folder (as of ``version``) on this machine."""
        key = hashlib.sha256(f"{self.uri}\0{version}".encode()).hexdigest()[:16]
        return cache_root() / key / (self.name or "root")

    def local_copy(
        self,
        skip: tuple[str, ...] = (),
        version: str = "",
        fetch: Callable[[Location, Path], None] | None = None,
    ) -> Path:
        """A local folder with this folder's files: itself when local, else a download cached per
        ``version`` (e.g. a marker file's mtime: a folder written again is fetched again) in the
        bounded cache (``storage.cache``). ``fetch(self, tmp)`` fills a new copy (default: every
        file but the top-level entries in ``skip``)."""
        if self.is_local:
            return self.local_path
        fill = (
            functools.partial(fetch, self) if fetch else functools.partial(self.download, skip=skip)
        )
        return cached(self.cache_path(version), fill)


def _copy(source: Location, dest: Location) -> None:
    """Copy the file or folder tree ``source`` to ``dest`` (same-named files replaced)."""
    fs = [None if loc.is_local else loc.fs for loc in (source, dest)]
    filesystems.copy(source.path, dest.path, *fs)


def reach(where: str | os.PathLike | Location, key: str) -> Location:
    """``where`` as a location whose filesystem answers, else ``StorageError`` naming ``key``."""
    loc = Location.of(where)
    try:
        loc.info()
    except OSError as err:
        hint = (
            "check the URI, the credentials (AWS_* / GOOGLE_APPLICATION_CREDENTIALS variables or "
            "the node's instance profile) and the endpoint (AWS_ENDPOINT_URL or ?endpoint_override=)"
            if not loc.is_local
            else "check the path and its permissions"
        )
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise StorageError(f"{key}={where}: cannot be reached ({reason}); {hint}") from None
    return loc
