"""Folders that appear whole or not at all, with several processes writing the same one at once.

A writer fills a private temporary folder beside the destination (``staging``) and ``publish``es
it with ``rename``, which is atomic on one filesystem and refuses to replace a non-empty folder:

- nothing at ``out``: the rename puts the folder in place;
- ``out`` exists and ``replace`` is false (readers may be using it, e.g. a Serve replica loading
  an export another replica just wrote): the existing complete folder stays, the new one is
  dropped (both are exports of the same checkpoint);
- ``out`` exists and ``replace`` is true: it is renamed aside, the new folder renamed in, the old
  one deleted. Two writers racing this way both succeed and one complete folder remains.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A new empty folder beside ``out`` (hidden name), removed on the way out unless published."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, out: Path, replace: bool, complete: str) -> None:
    """Move the finished folder ``tmp`` to ``out`` (see the module docstring); ``complete`` names a
    file whose presence makes an existing ``out`` complete."""
    while True:
        try:
            tmp.rename(out)
            return
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if not replace and (out / complete).is_file():
            return  # staging() removes tmp
        aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
        try:
            out.rename(aside / out.name)
        except FileNotFoundError:
            continue  # another writer moved it first: try again
        finally:
            shutil.rmtree(aside, ignore_errors=True)
