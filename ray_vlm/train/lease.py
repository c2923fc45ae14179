"""One live run per folder: a lease file, ``<dump_dir>/lease.json``, held by the run's driver.

``Lease.take(where)`` is called by a run's driver (``trainer.train``, rank 0 of ``local_run``,
``evaluate``) before it writes anything there, and held until the run ends, failed or not
(``with Lease.take(...)``; ``release`` deletes the file). The file names its owner: a run id,
host, pid, start time and heartbeat time, the last renewed every ``HEARTBEAT_S`` by a daemon thread
of the holder. Workers never touch it: a worker group Ray Train restarts stays inside the run that
holds it.

A second run on the same folder while the lease is live ends in ``LeaseHeld`` (a ``UserError``: one
line naming the holder's host, pid and last heartbeat, and what to do). A lease is stale, and taken
over with a one-line warning on stderr naming its old owner, when its heartbeat is older than
``STALE_AFTER_S`` or its owner's pid is gone from this host (a run killed with SIGKILL on this
machine is taken over at once, so the same command resumes it). A finished or dead run's folder
is resumed as before: the lease is per live run.

Atomicity. Locally (a shared filesystem included) a free lease is taken by ``os.link`` of a
complete temporary file: create-if-absent, so of runs starting at once exactly one gets it. Object
stores (pyarrow has no create-if-absent) and the takeover of a stale lease anywhere write the
lease, wait ``SETTLE_S``, and read it back: the run whose id is there holds it, any other ends in
``LeaseHeld``. Two runs both win only if one's read-to-write gap (milliseconds) outlasts
``SETTLE_S``; a holder's heartbeat reads before it writes and stops (with a warning) once another
run holds the file. Heartbeat ages compare clocks of different hosts: they must agree within
``STALE_AFTER_S`` (NTP).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ray_vlm.config import UserError
from ray_vlm.config.secrets import say
from ray_vlm.storage import Location, reach

LEASE_FILE = "lease.json"
HEARTBEAT_S = 10.0
"""How often the holder renews its heartbeat."""
STALE_AFTER_S = 60.0
"""A heartbeat older than this marks a lease whose run stopped (six missed beats)."""
SETTLE_S = 2.0
"""How long a write-then-verify take waits before reading the lease back."""


class LeaseHeld(UserError):
    """Another live run holds the folder's lease; the message names it and what to do."""


def _alive_here(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, killed but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


@dataclass(frozen=True)
class Owner:
    """What ``lease.json`` holds."""

    run_id: str
    host: str
    pid: int
    started: float
    heartbeat: float
    """Seconds since the epoch, as ``started``."""

    @classmethod
    def me(cls) -> Owner:
        now = time.time()
        return cls(uuid.uuid4().hex[:12], socket.gethostname(), os.getpid(), now, now)

    def stale(self, stale_after_s: float) -> bool:
        gone = self.host == socket.gethostname() and not _alive_here(self.pid)
        return gone or time.time() - self.heartbeat >= stale_after_s

    def describe(self) -> str:
        beat = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.heartbeat))
        ago = time.time() - self.heartbeat
        return f"host {self.host}, pid {self.pid}, last heartbeat {ago:.0f} s ago ({beat})"


def _read(path: Location, key: str) -> Owner | None:
    """The lease's owner, ``None`` when there is no lease."""
    try:
        return Owner(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        raise UserError(
            f"{key}: {path} is damaged; if no run uses {key} any more, delete it and run again"
        ) from None


def _held(key: str, where: Location, owner: Owner | None, stale_after_s: float) -> LeaseHeld:
    """``owner``: the holder, ``None`` for one that took and left the lease during a take."""
    who = owner.describe() if owner else "started at the same moment"
    return LeaseHeld(
        f"{key}={where} is in use by another run ({who}); wait for it to end or give another "
        f"{key} (a run whose heartbeat stops for {stale_after_s:.0f} s is taken over)"
    )


def _link_new(path: Location, owner: Owner) -> bool:
    """Create the local lease ``path`` holding ``owner`` unless it exists (atomic, whole);
    ``False`` when it exists or the filesystem has no hard links (then ``take`` writes and
    verifies, as in a bucket)."""
    tmp = Path(path.parent.path) / f".{path.name}.{owner.run_id}.tmp"
    tmp.write_text(json.dumps(asdict(owner)))
    try:
        os.link(tmp, path.path)
        return True
    except OSError:  # FileExistsError, or EPERM / ENOTSUP from a filesystem without links
        return False
    finally:
        tmp.unlink()


def check_free(where: str | os.PathLike | Location, key: str = "dump_dir") -> None:
    """``LeaseHeld`` when a live run holds ``where``'s lease (the CLI's check before it imports
    the training stage; ``Lease.take`` is what holds it)."""
    owner = _read(reach(where, key) / LEASE_FILE, key)
    if owner is not None and not owner.stale(STALE_AFTER_S):
        raise _held(key, Location.of(where), owner, STALE_AFTER_S)


class Lease:
    """A lease this process holds on a folder; a context manager that releases it on exit."""

    def __init__(self, path: Location, owner: Owner, heartbeat_s: float, key: str) -> None:
        self.path, self.owner, self.heartbeat_s, self.key = path, owner, heartbeat_s, key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat_until_released, daemon=True)

    @classmethod
    def take(
        cls,
        where: str | os.PathLike | Location,
        key: str = "dump_dir",
        *,
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
        settle_s: float = SETTLE_S,
    ) -> Lease:
        """Hold ``where``'s lease (``key``: the config key named in messages) and start its
        heartbeat; ``LeaseHeld`` when a live run holds it, a warning when a stale one is taken
        over (module docstring)."""
        folder = reach(where, key)
        path, me = folder / LEASE_FILE, Owner.me()
        folder.mkdir()
        if path.is_local and _link_new(path, me):
            return cls(path, me, heartbeat_s, key)._started()
        current = _read(path, key)
        if current is not None:
            if not current.stale(stale_after_s):
                raise _held(key, folder, current, stale_after_s)
            say(
                f"{key}={folder}: taking over the lease of a run that stopped "
                f"({current.describe()})",
                sys.stderr,
            )
        path.write_text(json.dumps(asdict(me)))
        time.sleep(settle_s)
        holder = _read(path, key)
        if holder is None or holder.run_id != me.run_id:
            raise _held(key, folder, holder, stale_after_s)
        return cls(path, me, heartbeat_s, key)._started()

    def _started(self) -> Lease:
        self._thread.start()
        return self

    def beat(self) -> bool:
        """Renew the heartbeat; ``False`` (and a warning) when another run holds the lease now."""
        holder = _read(self.path, self.key)
        if holder is None or holder.run_id != self.owner.run_id:
            taker = f" ({holder.describe()})" if holder else ""
            say(f"{self.key}: {self.path} was taken by another run{taker}", sys.stderr)
            return False
        self.owner = replace(self.owner, heartbeat=time.time())
        self.path.write_text(json.dumps(asdict(self.owner)))
        return True

    def _beat_until_released(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self.beat():
                    return
            except OSError as err:  # a storage outage: the next beat tries again
                say(f"{self.key}: heartbeat of {self.path} failed ({err})", sys.stderr)

    def release(self) -> None:
        """Stop the heartbeat and delete the lease file if it is still this run's."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        with contextlib.suppress(UserError):
            holder = _read(self.path, self.key)
            if holder is not None and holder.run_id == self.owner.run_id:
                self.path.delete()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
