"""The pieces of a streaming export that need no checkpoint: safetensors written one tensor at a
time, folders published atomically, the export settings."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import PretrainedConfig

from ray_vlm.config import ConfigError, FinetuneConfig, load_config
from ray_vlm.config.schema import ExportConfig
from ray_vlm.export.consolidate import export_dtype
from ray_vlm.export.publish import publish, staging
from ray_vlm.export.safetensors_out import INDEX, WEIGHTS, write_sharded

TENSORS = {
    "a.weight": torch.randn(300, 100),
    "b.weight": torch.randn(200, 100).to(torch.bfloat16),
    "c.ids": torch.arange(7),
    "d.mask": torch.tensor([True, False, True]),
    "e.scalar": torch.tensor(2.5, dtype=torch.float16),
}


def _specs() -> dict[str, torch.Tensor]:
    return {name: t.to("meta") for name, t in TENSORS.items()}


def test_one_file_when_it_fits(tmp_path) -> None:
    produced = []

    def produce(name: str) -> torch.Tensor:
        produced.append(name)
        return TENSORS[name]

    assert write_sharded(tmp_path, _specs(), produce, "1MB") == [WEIGHTS]
    assert produced == list(TENSORS)  # each tensor asked for once, in order
    loaded = load_file(tmp_path / WEIGHTS)
    assert loaded.keys() == TENSORS.keys()
    assert all(torch.equal(loaded[k], t) and loaded[k].dtype == t.dtype for k, t in TENSORS.items())


def test_shards_and_index_as_the_hub_lays_them_out(tmp_path) -> None:
    files = write_sharded(tmp_path, _specs(), TENSORS.__getitem__, "100KB")
    assert files == [f"model-{i:05d}-of-00002.safetensors" for i in (1, 2)]
    index = json.loads((tmp_path / INDEX).read_text())
    assert index["metadata"]["total_size"] == sum(t.nbytes for t in TENSORS.values())
    assert sorted(index["weight_map"]) == sorted(TENSORS)
    loaded = {k: t for f in files for k, t in load_file(tmp_path / f).items()}
    assert all(torch.equal(loaded[k], t) for k, t in TENSORS.items())


def test_a_tensor_unlike_its_spec_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"a.weight: produced \(300, 100\) torch.float16"):
        write_sharded(tmp_path, _specs(), lambda n: TENSORS[n].half(), "1MB")


def test_publish_replaces_or_keeps_an_existing_folder(tmp_path) -> None:
    out = tmp_path / "out"
    for content, replace in (("first", True), ("second", False), ("third", True)):
        with staging(out) as tmp:
            (tmp / "config.json").write_text(content)
            publish(tmp, out, replace=replace, complete="config.json")
    assert (out / "config.json").read_text() == "third"  # "second" found a complete folder
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging or old folder left

    (out / "config.json").unlink()  # incomplete: replaced even when keeping
    with staging(out) as tmp:
        (tmp / "config.json").write_text("fourth")
        publish(tmp, out, replace=False, complete="config.json")
    assert (out / "config.json").read_text() == "fourth"


def test_a_failed_export_leaves_nothing(tmp_path) -> None:
    with pytest.raises(RuntimeError), staging(tmp_path / "out") as tmp:
        (tmp / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("setting", "precision", "base", "expected"),
    [
        ("auto", "bf16", "float32", torch.bfloat16),  # a bf16 run exports bf16
        ("auto", "fp32", "bfloat16", torch.bfloat16),  # else the base model's dtype
        ("auto", "fp32", None, torch.float32),
        ("float16", "bf16", "float32", torch.float16),
    ],
)
def test_export_dtype(setting, precision, base, expected) -> None:
    cfg = load_config(
        FinetuneConfig, [f"export.dtype={setting}", f"distributed.precision={precision}"]
    )
    config = PretrainedConfig()
    config.dtype = base
    assert export_dtype(cfg.export, cfg.distributed, config) == expected


def test_export_settings_are_checked() -> None:
    assert ExportConfig(max_shard_size="500MB").max_shard_size == "500MB"
    with pytest.raises(ConfigError, match="export.max_shard_size"):
        ExportConfig(max_shard_size="5G")
    with pytest.raises(ConfigError, match="export.dtype"):
        ExportConfig(dtype="int8")
