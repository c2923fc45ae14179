"""``make gpu-wheels`` and ``make test-gpu`` on a machine with torch and transformers only.

A bare venv stands in for the GPU machine's python: it reaches torch, transformers, pip and what
they require (read from the running interpreter's metadata) through a ``.pth`` file naming a folder
of symlinks to exactly those distributions, outside the venv (pip never removes anything there);
those the wheelhouse ships are left out, so they must come from it. The wheelhouse is built for
this interpreter's Python (the GPU machine's is 3.12), which reaches the package registry.

``make test-gpu`` installs it there and collects ``tests/gpu`` (skipped without CUDA); then the
modules the GPU checks and ``torchrun`` import load with no Ray, pyarrow, peft, timm, torchvision
or datasets there, the tiny LLaVA builds, and what runs only mid-run finds its packages:
transformers' ZeRO-3 loading (``HfDeepSpeedConfig`` requires accelerate) and rank 0's ``loss.png``
(matplotlib). The whole torchrun flow in such a venv is left to tests/gpu: on CPU, DeepSpeed would
first JIT-build its communication op for the venv's new paths (a 2-step run: ~70 s on 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

pytestmark = pytest.mark.slow

MACHINE = ("torch", "transformers", "pip")  # all the GPU machine's python3 holds
ABSENT = ("ray", "pyarrow", "peft", "timm", "torchvision", "datasets")
BUDGET_BYTES = 60 << 20  # the wheelhouse travels with the checkout (64 MiB a call)

PROBE = f"""
import importlib.util, json, sys, tempfile
from pathlib import Path

assert not [m for m in {ABSENT!r} if importlib.util.find_spec(m)], "the venv is not bare"
import ray_vlm.train.local_run, ray_vlm.demo.assets, tests.gpu.test_gpu_flow

loaded = {{m.split(".")[0] for m in sys.modules}} & {{*{ABSENT!r}, "matplotlib"}}
assert not loaded, f"imported on the torchrun path: {{sorted(loaded)}}"
from transformers.integrations import HfDeepSpeedConfig

HfDeepSpeedConfig(json.loads(Path("configs/deepspeed/zero3.json").read_text()))
from ray_vlm.demo.assets import make_demo_assets
from ray_vlm.train.metrics import plot_loss

out = Path(tempfile.mkdtemp())
make_demo_assets(out, counts={{"train": 2, "test": 1}}, models=("llava",))
(out / "metrics.jsonl").write_text('{{"step": 1, "loss": 2.0}}\\n{{"step": 2, "loss": 1.0}}\\n')
assert plot_loss(out).is_file()
"""


def _closure(roots: tuple[str, ...], leave_out: set[str]) -> list[metadata.Distribution]:
    """``roots`` and every distribution they require (no extras), minus ``leave_out``'s names."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found or name in leave_out:
            continue
        found[name] = dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(found.values())


def _bare_venv(root: Path, leave_out: set[str]) -> Path:
    """A venv under ``root`` with ``MACHINE``'s distributions and nothing else; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", root / "venv"], check=True)
    shared = root / "machine-site"
    shared.mkdir()
    entries = {
        Path(dist.locate_file(f.parts[0]))
        for dist in _closure(MACHINE, leave_out)
        for f in dist.files or []
        if f.parts[0] not in ("..", "__pycache__")
    }
    for entry in entries:
        (shared / entry.name).symlink_to(entry)
    site = next((root / "venv/lib").glob("python3*/site-packages"))
    (site / "machine.pth").write_text(f"{shared}\n")
    return root / "venv/bin/python"


def _make(*args: str) -> subprocess.CompletedProcess:
    """``make args`` in the repository; fails the test with its output's tail unless it passes."""
    done = subprocess.run(["make", "-C", str(REPO), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make gpu-wheels`` for this interpreter's Python, once per session."""
    out = tmp_path_factory.mktemp("gpu") / "wheels"
    version = f"GPU_PYTHON_VERSION={sys.version_info.major}.{sys.version_info.minor}"
    _make("gpu-wheels", f"GPU_WHEELS={out}", version)
    return out


@pytest.fixture(scope="module")
def machine(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The bare venv's python after ``make test-gpu`` (no project .venv) ran in it; its output."""
    shipped = {canonicalize_name(w.name.split("-")[0]) for w in wheelhouse.glob("*.whl")}
    root = tmp_path_factory.mktemp("machine")
    python = _bare_venv(root, shipped)
    done = _make("test-gpu", f"VENV={root / 'no-venv'}", f"GPU_PYTHON={python}",
                 f"GPU_WHEELS={wheelhouse}")  # fmt: skip
    return python, done.stdout


def test_the_wheelhouse_fits_and_holds_a_pure_python_deepspeed(wheelhouse: Path) -> None:
    wheels = list(wheelhouse.glob("*.whl"))
    assert sum(w.stat().st_size for w in wheels) <= BUDGET_BYTES
    assert [w.name for w in wheels if w.name.startswith("deepspeed-")] == [
        "deepspeed-0.19.8-py3-none-any.whl"
    ]


def test_make_test_gpu_installs_the_wheelhouse_and_collects_tests_gpu(machine) -> None:
    _, output = machine
    assert "2 skipped" in output and "needs a CUDA GPU" in output


def test_the_torchrun_path_loads_on_torch_transformers_and_the_wheelhouse(machine) -> None:
    python, _ = machine
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([python, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
