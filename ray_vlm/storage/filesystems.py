"""The filesystems behind ``Location``: local paths on the standard library, URIs on pyarrow's
filesystems, with pyarrow imported on first use, so a run on local paths needs none (the GPU
checks' machine has none: ``make gpu-wheels``).

``local_info(path)`` answers as ``pyarrow.fs.LocalFileSystem().get_file_info(path)`` does
(``FileType`` has ``pyarrow.fs.FileType``'s values, so both kinds of info compare alike);
``copy`` as ``pyarrow.fs.copy_files``: a file, or a folder tree merged into the destination
(same-named files replaced, missing folders made).
"""

from __future__ import annotations

import enum
import functools
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlunsplit

from ray_vlm.config import UserError
from ray_vlm.config.secrets import mask_text

if TYPE_CHECKING:
    import pyarrow.fs as pafs


class StorageError(UserError):
    """A path or URI that cannot be reached; the message names it and what to check."""


class FileType(enum.IntEnum):
    """``pyarrow.fs.FileType``'s members, with its values."""

    NotFound = 0
    Unknown = 1
    File = 2
    Directory = 3


@dataclass(frozen=True)
class FileInfo:
    """What ``pyarrow.fs.FileInfo`` tells of a local path (``size`` of files only)."""

    path: str
    type: FileType
    size: int | None = None
    mtime_ns: int | None = None


def local_info(path: str) -> FileInfo:
    """The info of ``path``; ``FileType.NotFound`` when it (or a folder above it) is missing."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return FileInfo(path, FileType.NotFound)
    if stat.S_ISDIR(st.st_mode):
        return FileInfo(path, FileType.Directory, None, st.st_mtime_ns)
    kind = FileType.File if stat.S_ISREG(st.st_mode) else FileType.Unknown
    return FileInfo(path, kind, st.st_size, st.st_mtime_ns)


def pyarrow_local() -> pafs.FileSystem:
    """pyarrow's local filesystem (for libraries that take one, such as Ray Train)."""
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem()


@functools.cache
def remote(scheme: str, netloc: str, query: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of one ``scheme://netloc?query`` and the prefix its paths carry (the bucket
    for object stores), resolved once per process (S3 looks up the bucket's region)."""
    import pyarrow.fs as pafs

    probe = "/ray_vlm_probe"
    try:
        fs, path = pafs.FileSystem.from_uri(urlunsplit((scheme, netloc, probe, query, "")))
    except ValueError as err:  # pyarrow's ArrowInvalid, quoting the URI: credentials too
        shown = "***" if ":" in netloc or "@" in netloc else netloc  # a secret's / cut it here
        reason = mask_text(str(err).replace(netloc, shown))
        raise StorageError(
            f"{scheme}://{shown}: not a URI pyarrow can open ({reason}); percent-encode special "
            "characters of credentials in it (/ as %2F), or give them as AWS_* variables instead"
        ) from None
    return fs, path[: -len(probe)].rstrip("/") if path.endswith(probe) else netloc


def remote_names(fs: pafs.FileSystem, path: str) -> list[str]:
    """Names of the entries directly under the folder ``path`` of ``fs`` (none if it is absent)."""
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(path, allow_not_found=True)
    return [PurePosixPath(i.path).name for i in fs.get_file_info(selector)]


def copy(
    source: str,
    dest: str,
    source_fs: pafs.FileSystem | None = None,
    dest_fs: pafs.FileSystem | None = None,
) -> None:
    """Copy the file or folder tree ``source`` to ``dest``; a filesystem left out is local."""
    if source_fs is None and dest_fs is None:
        if os.path.isdir(source):
            shutil.copytree(source, dest, copy_function=shutil.copyfile, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(source, dest)
        return
    import pyarrow.fs as pafs

    local = pafs.LocalFileSystem()
    pafs.copy_files(
        source, dest, source_filesystem=source_fs or local, destination_filesystem=dest_fs or local
    )
