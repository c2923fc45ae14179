"""A multi-node cluster where a local ``dump_dir`` lives on storage only the head node sees: the
run is refused at the start, naming the path, the node and the fix, instead of failing at the first
checkpoint upload.

The worker node runs in a mount namespace of its own (``unshare --mount``) with an empty tmpfs over
the folder that holds ``dump_dir``: on that node the folder exists but the driver's files do not,
as with a path on the head node's own disk.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.ray_head import RayHead
from tests.conftest import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare"),
]


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the worker node does not see (the head's "local disk")."""
    return tmp_path_factory.mktemp("head_only")


@pytest.fixture(scope="module")
def cluster(hidden: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    root = tmp_path_factory.mktemp("two_nodes")
    head = RayHead.start(root / "head", "--num-cpus=1", "--object-store-memory=200000000")
    own_view = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                f'mount -t tmpfs none {hidden} && exec "$0" "$@"')  # fmt: skip
    try:
        worker = head.add_worker(
            root / "worker", "--num-cpus=2", "--object-store-memory=200000000", wrap=own_view
        )
    except RuntimeError:
        head.stop()
        raise
    yield head
    worker.stop()
    head.stop()


def test_a_dump_dir_only_the_head_sees_is_refused_at_the_start(
    cluster: RayHead, hidden: Path, demo_assets: Path
) -> None:
    dump_dir = hidden / "run"
    env = {**cluster.env, "RAY_ADDRESS": cluster.gcs_address}
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, "-m", "ray_vlm.cli", "train",
            "--config", "configs/finetune/demo.yaml",
            f"dump_dir={dump_dir}",
            f"data.datasets_yaml={demo_assets / 'datasets.yaml'}",
            f"checkpoint.init_ckpt_path={demo_assets / 'models/llava'}",
            "distributed.num_workers=1",
            "data.preprocess_workers=1",
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ray-vlm train: dump_dir: Ray node(s) ")
    assert f"do not see {dump_dir}/config.yaml;" in last
    assert "use a shared filesystem every node mounts (NFS, EFS) or a bucket URI" in last
    assert not (dump_dir / "checkpoints").exists()  # refused before Ray Train started
    assert seconds < 120, seconds
