"""The README's "Cluster" commands, run as written: every ``ray job submit`` line is parsed out of
README.md and run in ``bash`` against a local head started with ``ray start --num-cpus=4`` and token
auth (``RAY_ADDRESS`` and ``RAY_AUTH_MODE`` exported as the README does; ``$SHARED`` a temp folder,
"storage every node sees"): the demo assets job, the fine-tune, the evaluation and the Serve
deployment succeed, and the served model answers on port 8000.

The fine-tune fits the 4 CPUs exactly (2 training workers + 2 preprocessing actors; the read task
reserves none) and completes: the Ray Train / Ray Data deadlock of a full head does not happen. The
job server reports it SUCCEEDED, and it leaves a complete checkpoint and the exported model. A
client without the cluster's token is refused, and nothing but the README's jobs ran on the head.
(One head and one pass over the README's jobs serve every test of the module.)
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ray_vlm.train.run_state import read_state
from tests.cluster.ray_head import RayHead, auth_env, readme_job_commands

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    head = RayHead.start(tmp_path_factory.mktemp("readme_head"), "--num-cpus=4")
    yield head
    head.stop()


def run_readme_command(command: str, head: RayHead, shared: Path) -> subprocess.CompletedProcess:
    """One README line in bash, with the variables the README exports before it."""
    env = {**head.env, "RAY_ADDRESS": head.dashboard, "SHARED": str(shared)}
    return head.run_client(["bash", "-c", command], env, JOB_TIMEOUT_S)


@pytest.fixture(scope="module")
def jobs(head: RayHead, tmp_path_factory) -> tuple[dict[str, subprocess.CompletedProcess], Path]:
    """Each README job by what it runs (``make-demo-assets``, ``finetune``, ...), in order; the
    first failure stops the rest."""
    shared = tmp_path_factory.mktemp("shared")
    done: dict[str, subprocess.CompletedProcess] = {}
    for command in readme_job_commands():
        name = re.search(r"make-demo-assets|jobs/(\w+)\.py", command).group(0)
        done[name.removeprefix("jobs/").removesuffix(".py")] = job = run_readme_command(
            command, head, shared
        )
        if job.returncode != 0:
            break
    return done, shared


def _output(job: subprocess.CompletedProcess) -> str:
    return job.stdout + job.stderr


def _job_ids(text: str) -> list[str]:
    return sorted(set(re.findall(r"raysubmit_\w+", text)))


def test_the_readme_submits_the_three_entrypoints() -> None:
    scripts = [c.split(" -- ", 1)[1].split()[:2] for c in readme_job_commands()]
    assert [s[1] for s in scripts if s[0] == "python"] == [
        "jobs/finetune.py",
        "jobs/evaluate.py",
        "jobs/serve.py",
    ]


def test_every_readme_job_succeeds_as_written(jobs, head: RayHead) -> None:
    done, shared = jobs
    assert list(done) == ["make-demo-assets", "finetune", "evaluate", "serve"], list(done)
    for name, job in done.items():
        assert job.returncode == 0, (name, _output(job)[-4000:])
    state = read_state(shared / "runs/demo/checkpoints" / f"{30:010d}")
    assert state is not None and (state.step, state.world_size) == (30, 2)
    (job_id,) = _job_ids(_output(done["finetune"]))
    assert head.api(f"/api/jobs/{job_id}")["status"] == "SUCCEEDED"
    (exported,) = re.findall(r"Hugging Face model: (\S+)", _output(done["finetune"]))
    assert (Path(exported) / "config.json").is_file()
    assert any(Path(exported).glob("*.safetensors"))
    assert re.search(r"cider\s+[\d.]+", _output(done["evaluate"]))
    assert (shared / "eval/demo/report.html").is_file()
    assert "serving at http://127.0.0.1:8000/v1" in _output(done["serve"])


def test_the_served_model_answers(jobs) -> None:
    done, _ = jobs
    assert done.get("serve") is not None and done["serve"].returncode == 0
    with urllib.request.urlopen("http://127.0.0.1:8000/v1/models", timeout=30) as response:
        models = json.loads(response.read())
    assert [m["id"] for m in models["data"]] == ["demo"]


@pytest.mark.parametrize(
    "client",
    [auth_env("disabled"), auth_env("token", token="not-the-cluster-token")],
    ids=["no-token", "wrong-token"],
)
def test_a_client_without_the_token_is_refused(client: dict, head: RayHead, jobs) -> None:
    refused = head.submit("python", "-c", "print('ran')", env=client, timeout=120)
    assert refused.returncode != 0
    assert re.search(r"401|[Uu]nauthori[sz]ed|[Aa]uthentication", _output(refused))
    submitted = sorted(job["submission_id"] for job in head.api("/api/jobs/"))
    assert submitted == _job_ids("".join(_output(job) for job in jobs[0].values()))  # only these
