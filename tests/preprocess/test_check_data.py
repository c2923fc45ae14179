"""``ray-vlm check-data --json`` on a dataset seeded with every kind of bad record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.preprocess.helpers import qa, write_plm


@pytest.mark.slow
def test_check_data_json_reports_every_bad_record(tmp_path: Path, demo_assets: Path) -> None:
    rows = [
        qa("Describe the image.", "a red square"),  # 1 good
        "{not json",  # 2
        {"image": "a.png"},  # 3 missing field
        qa("q", "  "),  # 4 empty answer
        qa("q", "x", image="missing.png"),  # 5 missing file
        qa("q", "x", image="broken.png"),  # 6 unreadable image
        qa("Describe the image. " * 30, "x"),  # 7 image tokens + prompt over max_seq_len
        qa("Describe the image.", "a blue circle " * 30),  # 8 kept, text truncated
    ]
    spec = write_plm(tmp_path / "seeded", rows, {"a.png": None, "broken.png": b"\x89PNG garbage"})
    registry = tmp_path / "datasets.yaml"
    registry.write_text(yaml.safe_dump({"seeded": {"annotation": spec.annotation}}))
    res = subprocess.run(
        [sys.executable, "-m", "ray_vlm.cli", "check-data", "--config", str(REPO / "configs/finetune/demo.yaml"),
         f"data.datasets_yaml={registry}", "data.datamix=seeded:1", "data.max_seq_len=64",
         f"checkpoint.init_ckpt_path={demo_assets / 'models/llava'}", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr[-2000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert (report["total"], report["valid"], report["invalid"]) == (8, 2, 6)
    reasons = {e["source"].rsplit(":", 1)[1]: e["reason"] for e in report["errors"]}
    assert sorted(reasons, key=int) == ["2", "3", "4", "5", "6", "7"]
    assert all(e["source"].startswith(spec.annotation + ":") for e in report["errors"])
    assert "not valid JSON" in reasons["2"] and "missing field 'conversations'" in reasons["3"]
    assert "empty answer" in reasons["4"] and "'missing.png' not found" in reasons["5"]
    assert "cannot be decoded" in reasons["6"] and "data.max_seq_len=64" in reasons["7"]
    seeded = report["sources"]["seeded"]
    assert (seeded["image_errors"], seeded["too_long"], seeded["truncated"]) == (1, 1, 1)
    assert seeded["tokens"]["p100"] == 64


@pytest.mark.usefixtures("ray_local")
def test_an_unknown_processor_setting_stops_check_data(demo_assets: Path, capsys) -> None:
    from ray_vlm.cli import main

    code = main(
        ["check-data", "--config", str(REPO / "configs/finetune/demo.yaml"),
         f"data.datasets_yaml={demo_assets / 'datasets.yaml'}",
         f"checkpoint.init_ckpt_path={demo_assets / 'models/perception_lm'}",
         "model.processor_kwargs.max_tiles=2"]
    )  # fmt: skip
    assert code == 2
    assert "ray-vlm check-data: processor_kwargs: 'max_tiles' is not a setting" in (
        capsys.readouterr().err
    )
