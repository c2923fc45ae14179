"""A Ray head of its own for cluster tests: ``ray start --head --block`` with token auth, and
``ray job submit`` against it.

``RayHead.start(root, *args, env=...)`` runs the head in a new session with free ports, a Ray temp
dir of its own (``--temp-dir`` and ``RAY_TMPDIR``: nothing goes to ``/tmp/ray``, so a
``ray.init()`` elsewhere on this machine never finds it) and token authentication on with a token
of its own (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN_PATH=root/auth_token``; ``~/.ray/auth_token``
is neither read nor written). ``stop()`` ends every process of that session: ``ray stop`` has no
address option and would stop every Ray cluster on the machine.

``submit(entrypoint)`` runs ``ray job submit`` from the repo with ``jobs/runtime_env.yaml``, the way
the README does, and returns the finished CLI process (exit code 0 iff the job SUCCEEDED).
``add_worker(root, *args, wrap=...)`` joins a worker node (``ray start --address``) to the head,
started through ``wrap`` (e.g. ``unshare --mount ...``: a node with a filesystem view of its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.conftest import REPO

NOT_SUBMITTED = ("No available agent", "Failed to connect to Ray at address")
"""Job client errors of a head still starting its job server: the job was not submitted."""
VENV_BIN = Path(sys.executable).parent
"""``ray`` and ``python`` of this venv: the jobs' ``python`` resolves here too."""


GRACE_S = 3
"""SIGTERM to SIGKILL, stopping a test cluster: Ray's processes that handle SIGTERM are gone well
within it, and waiting out the rest (up to 10 s each) only lengthens the suite; the cluster's temp
dir goes with it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_temp_dir() -> tempfile.TemporaryDirectory:
    """A temp dir with a short path: Ray's unix sockets live under it (at most 107 bytes)."""
    return tempfile.TemporaryDirectory(
        prefix="rvlm_cluster_", dir="/tmp", ignore_cleanup_errors=True
    )


def auth_env(mode: str, token: str | None = None, token_path: Path | None = None) -> dict:
    """This process's environment with only the given Ray token settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH_", "RAY_ADDRESS"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["RAY_AUTH_MODE"] = mode
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    if token_path is not None:
        env["RAY_AUTH_TOKEN_PATH"] = str(token_path)
    return env


@dataclass
class RayHead:
    root: Path
    process: subprocess.Popen
    ray_tmp: tempfile.TemporaryDirectory
    gcs_port: int
    dashboard_port: int

    @property
    def token_path(self) -> Path:
        return self.root / "auth_token"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def env(self) -> dict:
        """The environment of a client that holds this cluster's token."""
        return auth_env("token", token_path=self.token_path)

    @classmethod
    def start(
        cls,
        root: Path,
        *args: str,
        env: dict | None = None,
        gcs_port: int | None = None,
        timeout: float = 120,
    ) -> RayHead:
        """Start a head (``args`` go to ``ray start``; ``env`` adds to its environment) and wait
        until its job server answers."""
        root.mkdir(parents=True, exist_ok=True)
        (root / "auth_token").write_text(secrets.token_hex(32))
        gcs_port, dashboard_port = gcs_port or free_port(), free_port()
        ray_tmp = short_temp_dir()
        cmd = [
            str(VENV_BIN / "ray"), "start", "--head", "--block",
            f"--port={gcs_port}",
            f"--dashboard-port={dashboard_port}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            f"--temp-dir={ray_tmp.name}",
            *args,
        ]  # fmt: skip
        head_env = auth_env("token", token_path=root / "auth_token")
        head_env["RAY_TMPDIR"] = ray_tmp.name
        head_env.update(env or {})
        with (root / "head.log").open("w") as log:
            process = subprocess.Popen(
                cmd, env=head_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        head = cls(root, process, ray_tmp, gcs_port, dashboard_port)
        deadline = time.time() + timeout
        while head.api("/api/version") is None:
            if process.poll() is not None or time.time() > deadline:
                head.stop()
                raise RuntimeError(f"the Ray head did not come up; see {root / 'head.log'}")
            time.sleep(1)
        return head

    def api(self, path: str) -> dict | None:
        """GET a dashboard JSON route with this cluster's token (``None`` while it is down)."""
        request = urllib.request.Request(
            self.dashboard + path,
            headers={"Authorization": f"Bearer {self.token_path.read_text()}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def nodes(self) -> list[dict]:
        """Every node the cluster has seen (state API): ``node_id``, ``state`` (ALIVE/DEAD), ...."""
        answer = self.api("/api/v0/nodes?limit=1000&detail=1")
        if answer is None:
            raise RuntimeError(f"the state API of {self.dashboard} did not answer")
        return answer["data"]["result"]["result"]

    def submit(
        self,
        *entrypoint: str,
        env: dict | None = None,
        timeout: float = 600,
        runtime_env: str = "jobs/runtime_env.yaml",
    ) -> subprocess.CompletedProcess:
        cmd = [
            str(VENV_BIN / "ray"), "job", "submit",
            "--address", self.dashboard,
            "--runtime-env", runtime_env,
            "--", *entrypoint,
        ]  # fmt: skip
        return self.run_client(cmd, self.env if env is None else env, timeout)

    def run_client(
        self, cmd: list[str], env: dict, timeout: float, agent_wait_s: float = 120
    ) -> subprocess.CompletedProcess:
        """Run a job client command from the repo; while the head's job server or agent is still
        starting (the client could not connect, or "No available agent": nothing was submitted)
        run it again."""
        deadline = time.time() + agent_wait_s
        while True:
            done = subprocess.run(
                cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
            )
            starting = any(m in done.stderr for m in NOT_SUBMITTED)
            if not starting or time.time() > deadline:
                return done
            time.sleep(3)

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def add_worker(
        self, root: Path, *args: str, wrap: tuple[str, ...] = (), timeout: float = 120
    ) -> WorkerNode:
        """Start a worker node of this cluster (``args`` go to ``ray start``) through the command
        prefix ``wrap``, and wait until the cluster counts it."""
        root.mkdir(parents=True, exist_ok=True)
        ray_tmp = short_temp_dir()
        before = len([n for n in self.nodes() if n["state"] == "ALIVE"])
        cmd = [
            *wrap, str(VENV_BIN / "ray"), "start", "--block",
            f"--address={self.gcs_address}",
            f"--temp-dir={ray_tmp.name}",
            f"--dashboard-agent-listen-port={free_port()}",
            *args,
        ]  # fmt: skip
        env = {**self.env, "RAY_TMPDIR": ray_tmp.name}
        with (root / "worker.log").open("w") as log:
            process = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        node = WorkerNode(process, ray_tmp)
        deadline = time.time() + timeout
        while len([n for n in self.nodes() if n["state"] == "ALIVE"]) <= before:
            if process.poll() is not None or time.time() > deadline:
                node.stop()
                raise RuntimeError(f"the worker node did not join; see {root / 'worker.log'}")
            time.sleep(1)
        return node

    def stop(self, grace_s: float = GRACE_S) -> None:
        """SIGTERM every process of the head's session, SIGKILL what is left after ``grace_s``."""
        _stop_session(self.process, grace_s)
        self.ray_tmp.cleanup()


@dataclass
class WorkerNode:
    process: subprocess.Popen
    ray_tmp: tempfile.TemporaryDirectory

    def stop(self, grace_s: float = GRACE_S) -> None:
        _stop_session(self.process, grace_s)
        self.ray_tmp.cleanup()


def _stop_session(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM every process of ``process``'s session, SIGKILL what is left after ``grace_s``."""
    session = process.pid
    procs = [p for p in psutil.process_iter() if _session(p) == session]
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    process.wait(timeout=30)


def _session(p: psutil.Process) -> int | None:
    try:
        return os.getsid(p.pid)
    except OSError:
        return None


def finetune_entrypoint(assets: Path, dump_dir: Path, *overrides: str) -> list[str]:
    """``python jobs/finetune.py`` on the demo config and the ``demo_assets`` data and LLaVA,
    shortened to 2 steps of 4 examples per worker."""
    return [
        "python", "jobs/finetune.py",
        "config=configs/finetune/demo.yaml",
        f"dump_dir={dump_dir}",
        f"data.datasets_yaml={assets / 'datasets.yaml'}",
        f"checkpoint.init_ckpt_path={assets / 'models/llava'}",
        "data.preprocess_workers=1",
        "steps=2",
        "batch_size=4",
        "logging.freq=1",
        *overrides,
    ]  # fmt: skip


def readme_job_commands(section: str = "## Cluster") -> list[str]:
    """The ``ray job submit`` commands of the README section, continuation lines joined, as
    written (shell variables such as ``$SHARED`` left for the shell)."""
    text = (REPO / "README.md").read_text()
    body = text.split(f"\n{section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = body.split("```bash\n")[1:]
    lines = "".join(b.split("```", 1)[0] for b in blocks).replace("\\\n", " ").splitlines()
    return [" ".join(line.split()) for line in lines if line.startswith("ray job submit")]
