from __future__ import annotations

from pathlib import Path

import pytest

from ray_vlm.config import ConfigError, FinetuneConfig, load_config, save_config


def test_defaults_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("steps: 7\ndata:\n  datamix: a:1\n")
    cfg = load_config(FinetuneConfig, [f"config={path}", "data.datamix=b:2,c:1", "seed=3"])
    assert cfg.steps == 7  # from the file
    assert cfg.data.datamix == "b:2,c:1"  # the command line wins over the file
    assert cfg.seed == 3
    assert cfg.data.bad_records == "skip"  # the dataclass default


def test_round_trip_through_saved_yaml(tmp_path: Path) -> None:
    cfg = load_config(FinetuneConfig, ["steps=11", "data.group_by_length=false", "dump_dir=/x/y"])
    saved = save_config(cfg, tmp_path / "out" / "config.yaml")
    assert load_config(FinetuneConfig, [f"config={saved}"]) == cfg


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["stepz=3"], "'stepz'"),
        (["data.datamx=a:1"], "'data.datamx'"),
        (["steps=many"], "'steps'"),
        (["data.group_by_length=perhaps"], "'data.group_by_length'"),
        (["data.bad_records=ignore"], "'data.bad_records'"),
        (["eval.every=-1"], "'eval.every'"),
        (["eval.datamx=a:1"], "'eval.datamx'"),
        (["steps"], "key=value"),
        (["config=/no/such/file.yaml"], "/no/such/file.yaml"),
        (["distributed.gpus_per_worker=0.5"], "0.5: training takes one whole GPU a worker"),
    ],
)
def test_bad_overrides_name_the_key(args: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(FinetuneConfig, args)


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  datamix: a:1\n  shuffle_buffer: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(FinetuneConfig, [f"config={path}"])
    assert str(path) in str(err.value) and "data.shuffle_buffer" in str(err.value)
