"""``ray-vlm evaluate`` as a user runs it (a subprocess starting its own Ray cluster and Serve):
VQA accuracy per question type in metrics.json and the report, and a clean console — a tqdm bar,
no deprecation warning from ray_vlm's calls, no raylet error when Serve and Ray shut down."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ray_vlm.demo.shapes import QUESTIONS

pytestmark = pytest.mark.slow

WARNING_LINE = re.compile(r"(?P<path>\S+\.py):\d+: \w+")
"""How Python prints a warning: ``path:line: Category: message``."""


@pytest.fixture(scope="module")
def run(demo_assets: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("eval_cli")
    args = [
        "evaluate", "--ckpt", str(demo_assets / "models/llava"), "--data", "demo_vqa_test",
        "--task", "vqa", f"datasets_yaml={demo_assets / 'datasets.yaml'}", f"out_dir={out}",
        "max_new_tokens=4", "serve.replicas.num_cpus=0.5",
    ]  # fmt: skip
    # Every DeprecationWarning is shown (by default only __main__'s are), so one raised by a call
    # in ray_vlm would be printed with ray_vlm's path.
    env = {**os.environ, "PYTHONWARNINGS": "default::DeprecationWarning"}
    env.pop("RAY_ADDRESS", None)
    res = subprocess.run(
        [sys.executable, "-m", "ray_vlm.cli", *args],
        cwd=out, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res.stdout + res.stderr


def test_console_shows_a_bar_and_no_deprecation_or_raylet_error(run) -> None:
    _, console = run
    assert re.search(r"evaluate model: 100%\|[^\n\r]*\| 30/30 ", console), console[-3000:]
    deprecations = []
    for line in console.splitlines():
        if not re.search("deprecat", line, re.IGNORECASE):
            continue
        warning = WARNING_LINE.match(line)
        if warning and "/ray_vlm/" not in warning["path"]:
            continue  # a library warning about its own code (Pydantic in Serve, Ray Data's context)
        deprecations.append(line)
    assert not deprecations, deprecations
    raylet_errors = [
        line for line in console.splitlines() if "(raylet)" in line and "error" in line.lower()
    ]
    assert not raylet_errors, raylet_errors
    assert re.search(r"vqa_accuracy \[colour\] \(n=10\)\s+[\d.]+", console)


def test_metrics_and_report_give_accuracy_per_question_type(run) -> None:
    out, _ = run
    metrics = json.loads((out / "metrics.json").read_text())["model"]
    by_type = metrics["per_question_type"]
    assert list(by_type) == list(QUESTIONS)  # colour, shape, position, in file order
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    for qtype, entry in by_type.items():
        scores = [r["model"]["score"] for r in rows if r["question_type"] == qtype]
        assert entry["count"] == len(scores) == 10
        assert entry["vqa_accuracy"] == pytest.approx(sum(scores) / len(scores))
    page = (out / "report.html").read_text()
    assert "vqa_accuracy per question type" in page
    for qtype in QUESTIONS:
        assert f"<tr><th>{qtype}</th>" in page
