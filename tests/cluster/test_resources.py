"""A run that cannot fit the cluster is refused at once, never left waiting: the README's demo
fine-tune job (2 training workers + 2 preprocessing actors) submitted as written to a head started
with ``ray start --num-cpus=2`` fails within seconds with one line naming the numbers and the keys.
(On a 4-CPU head the same job completes: ``test_readme_jobs.py``.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.ray_head import RayHead, readme_job_commands
from tests.cluster.test_readme_jobs import run_readme_command

pytestmark = pytest.mark.slow

REFUSED_WITHIN_S = 120  # job submission, the driver's imports and connecting to Ray included


@pytest.fixture(scope="module")
def small_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    head = RayHead.start(tmp_path_factory.mktemp("small_head"), "--num-cpus=2")
    yield head
    head.stop()


def test_the_demo_job_on_a_2_cpu_head_is_refused_at_once(
    small_head: RayHead, demo_assets: Path, tmp_path: Path
) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/demo").symlink_to(demo_assets)  # the README's assets job, done already
    (finetune,) = [c for c in readme_job_commands() if "jobs/finetune.py" in c]
    started = time.perf_counter()
    job = run_readme_command(finetune, small_head, tmp_path / "shared")
    seconds = time.perf_counter() - started
    output = job.stdout + job.stderr
    assert job.returncode != 0, output[-3000:]
    assert (
        "ray-vlm train: this run needs 4 CPUs (2 train workers x 1 + 2 preprocessing actors x 1) "
        "but the Ray cluster has 2: lower distributed.num_workers, distributed.cpus_per_worker, "
        "data.preprocess_workers, or add nodes"
    ) in output, output[-3000:]
    assert "Traceback" not in output
    assert seconds < REFUSED_WITHIN_S, seconds
