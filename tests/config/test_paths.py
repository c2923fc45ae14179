"""One rule for relative paths (``config.paths``): the working directory, beside the YAML that
names them, the ray_vlm checkout; a required file found nowhere ends the command in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ray_vlm.config import ConfigError, FinetuneConfig, load_config
from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.records import load_registry
from tests.conftest import REPO

SHIPPED = ["plm_8b_radiology", "paligemma_prescription", "demo"]


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_config_finds_its_files_from_any_folder(name, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(FinetuneConfig, [f"config={REPO / 'configs/finetune' / name}.yaml"])
    ds = Path(cfg.distributed.deepspeed_config)
    assert ds.is_absolute() and ds.parent == REPO / "configs/deepspeed", ds
    assert cfg.data.datasets_yaml == str(REPO / "configs/datasets.yaml")


def test_the_working_directory_first_then_beside_the_config(tmp_path, monkeypatch) -> None:
    user = tmp_path / "project"
    user.mkdir()
    (user / "ds.json").write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    (user / "my.yaml").write_text(yaml.safe_dump({"distributed": {"deepspeed_config": "ds.json"}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(FinetuneConfig, [f"config={user / 'my.yaml'}"])
    assert cfg.distributed.deepspeed_config == str(user / "ds.json")
    (elsewhere / "ds.json").write_text("{}")
    cfg = load_config(FinetuneConfig, [f"config={user / 'my.yaml'}"])
    assert cfg.distributed.deepspeed_config == str(elsewhere / "ds.json")


def test_a_missing_file_names_its_key_and_where_it_looked(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^key 'distributed.deepspeed_config': 'nope.json' "):
        load_config(FinetuneConfig, ["distributed.deepspeed_config=nope.json"])
    with pytest.raises(ConfigError, match=rf"looked in {tmp_path}, {REPO}\)$"):
        load_config(FinetuneConfig, ["data.datasets_yaml=none.yaml"])


def test_a_hub_id_and_a_uri_are_kept(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(
        FinetuneConfig,
        [
            "checkpoint.init_ckpt_path=google/paligemma2-3b-pt-224",
            "data.datasets_yaml=s3://b/d.yaml",
        ],
    )
    assert cfg.checkpoint.init_ckpt_path == "google/paligemma2-3b-pt-224"
    assert cfg.data.datasets_yaml == "s3://b/d.yaml"


def test_registry_entries_are_found_beside_the_registry(tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "train.jsonl").write_text("")
    entry = {"annotation": "train.jsonl", "root_dir": "images", "format": "plm"}
    (data / "datasets.yaml").write_text(yaml.safe_dump({"mine": entry}))
    monkeypatch.chdir(tmp_path)
    spec = load_registry(data / "datasets.yaml")["mine"]
    assert (spec.annotation, spec.root_dir) == (str(data / "train.jsonl"), str(data / "images"))


def test_train_with_a_missing_deepspeed_config_ends_in_one_line_before_ray(tmp_path) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ray_vlm.cli", "train", "--config",
         str(REPO / "configs/finetune/plm_8b_radiology.yaml"),
         "distributed.deepspeed_config=configs/deepspeed/zero9.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("ray-vlm train: key 'distributed.deepspeed_config': "), line
    assert time.perf_counter() - started < 30


def test_an_evaluation_finds_its_registry_and_models_by_the_same_rule(
    tmp_path, monkeypatch
) -> None:
    user = tmp_path / "project"
    (user / "model").mkdir(parents=True)
    (user / "eval.yaml").write_text(yaml.safe_dump({"ckpt": "model", "compare": "org/base"}))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(EvalConfig, [f"config={user / 'eval.yaml'}"])
    assert cfg.datasets_yaml == str(REPO / "configs/datasets.yaml")  # the shipped default
    assert (cfg.ckpt, cfg.compare) == (str(user / "model"), "org/base")  # beside it; a hub id
    with pytest.raises(ConfigError, match=r"^key 'datasets_yaml': 'mine.yaml' does not exist"):
        load_config(EvalConfig, ["datasets_yaml=mine.yaml"])
