from __future__ import annotations

from pathlib import Path

import pytest

from ray_vlm.config import ConfigError
from ray_vlm.records import load_registry, parse_datamix, resolve_spec, select_datamix


def test_datamix_names_weights_and_shares() -> None:
    mix = parse_datamix("radiology_finetune:1, sft_blend:3")
    assert [(e.name, e.weight) for e in mix] == [("radiology_finetune", 1.0), ("sft_blend", 3.0)]
    assert [e.share for e in mix] == [0.25, 0.75]
    assert parse_datamix("only")[0].share == 1.0  # a bare name weighs 1


@pytest.mark.parametrize(
    ("mix", "needle"),
    [
        ("a:x", "not a number"),
        ("a:0", "weight > 0"),
        ("a:1,a:2", "twice"),
        ("", "empty"),
        (":3", "name"),
    ],
)
def test_datamix_errors(mix: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_datamix(mix)


def test_registry_in_plm_layout_with_inferred_formats(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths resolve against the working directory, as in PLM
    (tmp_path / "rad/images").mkdir(parents=True)
    (tmp_path / "rad/train.jsonl").write_text('{"image": "a.png", "conversations": []}\n')
    (tmp_path / "rx/Training").mkdir(parents=True)
    (tmp_path / "rx/Training/training_labels.json").write_text(
        '{"prefix": "", "suffix": "Aceta", "image": "0.png"}\n'
    )
    (tmp_path / "rx/Training/training_labels.csv").write_text("IMAGE,MEDICINE_NAME\n0.png,Aceta\n")
    (tmp_path / "datasets.yaml").write_text(
        "radiology_finetune:\n"
        "    annotation: rad/train.jsonl\n"
        "    root_dir: rad/images\n"
        "rx:\n"
        "    annotation: rx/Training/training_labels.json\n"
        "rx_csv:\n"
        "    annotation: rx/Training/training_labels.csv\n"
    )
    selected = select_datamix("radiology_finetune:1,rx:2,rx_csv:1", "datasets.yaml")
    specs = {entry.name: spec for entry, spec in selected}
    assert specs["radiology_finetune"].format == "plm"
    assert specs["radiology_finetune"].root_dir == str(tmp_path / "rad/images")
    assert specs["rx"].format == "paligemma"
    assert specs["rx"].root_dir == str(
        tmp_path / "rx/Training"
    )  # no images/ folder: the annotation's
    assert specs["rx_csv"].format == "paligemma_csv"


def test_registry_errors_name_the_problem(tmp_path: Path) -> None:
    reg = tmp_path / "datasets.yaml"
    reg.write_text(
        f"a:\n  annotation: {tmp_path}/missing.jsonl\nb:\n  annotation: x\n  colour: red\n"
    )
    with pytest.raises(ConfigError, match="entry 'b.colour'"):
        load_registry(reg)
    reg.write_text(f"a:\n  annotation: {tmp_path}/missing.jsonl\n")
    with pytest.raises(ConfigError, match="'zzz', which is not in .*known: a"):
        select_datamix("zzz:1", reg)
    with pytest.raises(ConfigError, match="missing.jsonl' does not exist"):
        select_datamix("a:1", reg)
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"question": "?"}\n')
    with pytest.raises(ConfigError, match="set 'format'"):
        resolve_spec("odd", load_registry_entry(odd))


def load_registry_entry(annotation: Path):
    from ray_vlm.records import DatasetSpec

    return DatasetSpec(annotation=str(annotation))
