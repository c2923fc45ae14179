"""One live run per ``dump_dir`` (``train/lease.py``), on a local folder and in a bucket (moto's S3
server, ``tests/storage``' fixture): a second run is refused in one line naming the holder, a
stale lease is taken over with a warning, the heartbeat advances, release deletes the lease, and
``ray-vlm train`` on a held ``dump_dir`` ends within seconds, status 2, before writing anything."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from ray_vlm.config import UserError
from ray_vlm.storage import Location
from ray_vlm.train.lease import LEASE_FILE, STALE_AFTER_S, Lease, LeaseHeld, Owner, check_free
from tests.conftest import REPO
from tests.storage.conftest import s3  # noqa: F401  (the bucket, for ``where``)
from tests.train.conftest import stage_cfg

SETTLE_S = 0.05
"""Write-then-verify takes wait this long here (``SETTLE_S`` in production)."""


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path: Path) -> Location:
    if request.param == "local":
        return Location.of(tmp_path / "run")
    return Location.of(request.getfixturevalue("s3").uri(f"runs/{uuid.uuid4().hex[:8]}"))


def _owner(where: Location) -> Owner | None:
    path = where / LEASE_FILE
    return Owner(**json.loads(path.read_text())) if path.exists() else None


def _put(where: Location, owner: Owner) -> None:
    (where / LEASE_FILE).write_text(json.dumps(asdict(owner)))


def test_a_live_lease_refuses_a_second_run_in_one_line(where: Location) -> None:
    first = Lease.take(where, settle_s=SETTLE_S)
    for second in (lambda: Lease.take(where, settle_s=SETTLE_S), lambda: check_free(where)):
        with pytest.raises(LeaseHeld) as refused:
            second()
        line = str(refused.value)
        assert "\n" not in line and line.startswith(f"dump_dir={where} is in use by another run")
        assert f"host {socket.gethostname()}, pid {os.getpid()}, last heartbeat 0 s ago" in line
        assert "wait for it to end or give another dump_dir" in line
    assert _owner(where).run_id == first.owner.run_id  # the refused run left it alone
    first.release()
    assert _owner(where) is None
    check_free(where)
    with Lease.take(where, settle_s=SETTLE_S) as again:  # a finished run's folder: taken again
        assert _owner(where).run_id == again.owner.run_id != first.owner.run_id


def test_the_lease_is_released_when_the_run_fails(where: Location) -> None:
    with pytest.raises(RuntimeError), Lease.take(where, settle_s=SETTLE_S):
        assert _owner(where) is not None
        raise RuntimeError("the run failed")
    assert _owner(where) is None


def test_the_heartbeat_advances(where: Location) -> None:
    with Lease.take(where, heartbeat_s=0.1, settle_s=SETTLE_S) as lease:
        taken = _owner(where)
        deadline = time.time() + 10
        while _owner(where).heartbeat == taken.heartbeat and time.time() < deadline:
            time.sleep(0.05)
        beaten = _owner(where)
    assert beaten.heartbeat > taken.heartbeat
    assert beaten.run_id == taken.run_id == lease.owner.run_id
    assert beaten.started == taken.started


def _finished_pid() -> int:
    """The pid of a process of this host that has ended (and been reaped)."""
    code = "import os; print(os.getpid())"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True).stdout)


@pytest.mark.parametrize("how", ["heartbeat stopped elsewhere", "pid gone here"])
def test_a_stale_lease_is_taken_over_with_a_warning(where: Location, how: str, capsys) -> None:
    now = time.time()
    if how == "heartbeat stopped elsewhere":  # e.g. its driver's node was killed
        old = Owner("old", "node-7", 4242, now - 900, now - STALE_AFTER_S - 1)
    else:  # killed with SIGKILL on this machine: taken at once, however fresh its heartbeat
        old = Owner("old", socket.gethostname(), _finished_pid(), now - 5, now)
    _put(where, old)
    with Lease.take(where, settle_s=SETTLE_S) as lease:
        assert _owner(where).run_id == lease.owner.run_id
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1
    assert f"dump_dir={where}: taking over the lease of a run that stopped" in warning[0]
    assert f"host {old.host}, pid {old.pid}, last heartbeat" in warning[0]


def test_a_fresh_heartbeat_from_another_host_is_live(where: Location) -> None:
    _put(where, Owner("other", "node-7", 4242, time.time() - 60, time.time() - 1))
    with pytest.raises(LeaseHeld, match="host node-7, pid 4242, last heartbeat 1 s ago"):
        Lease.take(where, settle_s=SETTLE_S)
    assert _owner(where).run_id == "other"


def test_a_damaged_lease_ends_the_run_in_one_line(where: Location) -> None:
    (where / LEASE_FILE).write_text("{cut off")
    with pytest.raises(UserError, match=r"lease.json is damaged; if no run uses dump_dir any more"):
        Lease.take(where, settle_s=SETTLE_S)


def test_runs_starting_at_once_get_one_lease(where: Location) -> None:
    """Locally by create-if-absent; in the bucket by write, wait, read back."""
    start, results = threading.Barrier(4), []

    def take() -> None:
        start.wait()
        try:
            results.append(Lease.take(where, heartbeat_s=60, settle_s=1.0))
        except LeaseHeld as refused:
            results.append(refused)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = [r for r in results if isinstance(r, Lease)]
    assert len(held) == 1 and len(results) == 4, results
    assert _owner(where).run_id == held[0].owner.run_id
    held[0].release()


def test_a_lease_taken_from_its_holder_is_neither_renewed_nor_deleted(where: Location) -> None:
    lease = Lease.take(where, heartbeat_s=60, settle_s=SETTLE_S)
    taker = replace(lease.owner, run_id="taker", host="node-7")
    _put(where, taker)
    assert not lease.beat()
    lease.release()
    assert _owner(where) == taker


def test_train_takes_the_lease_before_writing_to_dump_dir(demo_assets: Path, tmp_path) -> None:
    from ray_vlm.train.trainer import train

    cfg = stage_cfg(tmp_path, demo_assets, 3, "fp32")
    with Lease.take(cfg.dump_dir):
        with pytest.raises(LeaseHeld, match="is in use by another run"):
            train(cfg)
        assert [p.name for p in Path(cfg.dump_dir).iterdir()] == [LEASE_FILE]  # no config.yaml


def test_a_second_train_command_ends_at_once_in_one_line(demo_assets: Path, tmp_path) -> None:
    """The first run is this test's process holding the lease: nothing is trained."""
    dump_dir = tmp_path / "run"
    argv = [
        sys.executable, "-m", "ray_vlm.cli", "train", "--config", "configs/finetune/demo.yaml",
        f"dump_dir={dump_dir}", f"checkpoint.init_ckpt_path={demo_assets / 'models/llava'}",
        f"data.datasets_yaml={demo_assets / 'datasets.yaml'}",
    ]  # fmt: skip
    with Lease.take(dump_dir):
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
        seconds = time.perf_counter() - started
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(
        f"ray-vlm train: dump_dir={dump_dir} is in use by another run (host "
        f"{socket.gethostname()}, pid {os.getpid()}, last heartbeat "
    )
    assert "another dump_dir" in done.stderr
    assert seconds < 20, seconds  # no training stage imported, no Ray started
    assert not (dump_dir / "config.yaml").exists()
