"""``ray job submit`` of ``jobs/finetune.py`` to a head started with ``ray start`` (token auth on),
as the README's "Cluster" section does it: the job succeeds and leaves a complete checkpoint and
the exported model; a client without the cluster's token is refused.

One head (8 logical CPUs) and one 2-step fine-tune serve every test of the module.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ray_vlm.train.run_state import read_state
from tests.cluster.ray_head import RayHead, auth_env, finetune_entrypoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    head = RayHead.start(tmp_path_factory.mktemp("head"), "--num-cpus=8")
    yield head
    head.stop()


@pytest.fixture(scope="module")
def finetune_job(
    head: RayHead, demo_assets: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess, Path]:
    dump_dir = tmp_path_factory.mktemp("shared") / "run"
    return head.submit(*finetune_entrypoint(demo_assets, dump_dir)), dump_dir


def _job_ids(text: str) -> list[str]:
    return sorted(set(re.findall(r"raysubmit_\w+", text)))


def test_finetune_job_succeeds_and_writes_its_checkpoint(finetune_job, head: RayHead) -> None:
    job, dump_dir = finetune_job
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    (job_id,) = _job_ids(job.stdout + job.stderr)
    status = head.api(f"/api/jobs/{job_id}")
    assert status["status"] == "SUCCEEDED", status
    state = read_state(dump_dir / "checkpoints" / f"{2:010d}")
    assert state is not None and (state.step, state.world_size) == (2, 2)
    (exported,) = re.findall(r"Hugging Face model: (\S+)", job.stdout + job.stderr)
    assert (Path(exported) / "config.json").is_file()
    assert any(Path(exported).glob("*.safetensors"))


@pytest.mark.parametrize(
    "client",
    [auth_env("disabled"), auth_env("token", token="not-the-cluster-token")],
    ids=["no-token", "wrong-token"],
)
def test_a_client_without_the_token_is_refused(client: dict, head: RayHead, finetune_job) -> None:
    refused = head.submit("python", "-c", "print('ran')", env=client, timeout=120)
    assert refused.returncode != 0
    assert re.search(r"401|[Uu]nauthori[sz]ed|[Aa]uthentication", refused.stdout + refused.stderr)
    submitted = [job["submission_id"] for job in head.api("/api/jobs/")]
    assert submitted == _job_ids(finetune_job[0].stdout + finetune_job[0].stderr)  # nothing else
