from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ray_vlm.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_make_demo_assets_cli(tmp_path: Path) -> None:
    res = _cli(
        "make-demo-assets",
        "--out",
        str(tmp_path / "a"),
        "--train",
        "4",
        "--test",
        "2",
        "--models",
        "llava",
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "a/models/llava/config.json").is_file()
    assert not (tmp_path / "a/models/paligemma").exists()


@pytest.mark.slow
def test_demo_runs_the_whole_mission_on_a_local_ray_cluster(tmp_path: Path) -> None:
    res = _cli("demo", "--out", str(tmp_path / "demo"))
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert "local Ray cluster" in out
    assert re.search(r"demo_captions\s+1000\s+1000\s+0\s", out)  # check-data: all valid
    first, last = map(float, re.search(r"loss ([\d.]+) -> ([\d.]+)", out).groups())
    assert last < first / 2
    assert list(
        (tmp_path / "demo/runs/finetune/checkpoints").glob("*/consolidated/model.safetensors")
    )
    assert re.search(r"POST http://127\.0\.0\.1:\d+/v1/chat/completions -> ", out)
    scores = re.findall(r"(cider|vqa_accuracy) \(\w+\)\s+([\d.]+)\s+([\d.]+)", out)
    assert [name for name, _, _ in scores] == ["cider", "vqa_accuracy"]
    for _, before, after in scores:
        assert float(after) > float(before) + 0.2  # clearly better after fine-tuning
    assert (tmp_path / "demo/eval/caption/report.html").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("consolidate", "--ckpt", "no/such/run", "--out", "x"), "not a complete checkpoint"),
        (
            ("generate", "--ckpt", "no/such/dir", "--media_path", "a.png", "--question", "Q?"),
            "does not exist",
        ),
        (("check-data", "--config", "configs/finetune/demo.yaml", "no_such_key=1"), "no_such_key"),
    ],
    ids=["consolidate", "generate", "config"],
)
def test_user_errors_exit_2_with_the_message_and_no_traceback(args, message) -> None:
    out = _cli(*args)
    assert out.returncode == 2, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ray-vlm {args[0]}: ") and message in last
    assert "Traceback" not in out.stderr
