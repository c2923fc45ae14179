"""Hugging Face datasets -> PLM layout, as the PLM radiology guide converts unsloth/Radiology_mini."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from PIL import Image

from ray_vlm.records import DatasetSpec, Record, read_records, resolve_spec
from ray_vlm.records.hf_convert import convert_hf_dataset

PROMPT = "You are an expert radiographer. Describe accurately what you see in this image."


def _radiology_like() -> datasets.DatasetDict:
    def split(n: int, prefix: str) -> datasets.Dataset:
        return datasets.Dataset.from_dict(
            {
                "image": [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(n)],
                "image_id": [f"ROCOv2_2023_{prefix}_{i:06d}" for i in range(n)],
                "caption": [f"scan number {i}" if i != 1 else "" for i in range(n)],
            },
            features=datasets.Features(
                {
                    "image": datasets.Image(),
                    "image_id": datasets.Value("string"),
                    "caption": datasets.Value("string"),
                }
            ),
        )

    return datasets.DatasetDict({"train": split(4, "train"), "test": split(2, "test")})


@pytest.mark.parametrize("kind", ["save_to_disk", "parquet"])
def test_converts_like_the_plm_guide(tmp_path: Path, kind: str) -> None:
    dd = _radiology_like()
    if kind == "save_to_disk":
        dd.save_to_disk(tmp_path / "hf")
    else:
        (tmp_path / "hf").mkdir()
        for name, ds in dd.items():
            ds.to_parquet(tmp_path / "hf" / f"{name}.parquet")
    out = tmp_path / "Radiology_mini"
    report = convert_hf_dataset(
        str(tmp_path / "hf"), out, splits=["train"], id_column="image_id", prompt=PROMPT
    )
    assert report.written == {"train": 3}
    assert [b.reason for b in report.skipped] == ["empty 'caption'"]
    assert report.skipped[0].source.endswith("[train]:1")
    first = json.loads((out / "train.jsonl").read_text().splitlines()[0])
    assert first == {
        "image": "ROCOv2_2023_train_000000.png",
        "conversations": [
            {"from": "human", "value": PROMPT},
            {"from": "assistant", "value": "scan number 0"},
        ],
    }
    records = list(
        read_records(resolve_spec("rad", DatasetSpec(annotation=str(out / "train.jsonl"))))
    )
    assert all(isinstance(r, Record) for r in records) and len(records) == 3


def test_vqa_columns_and_imagefolder(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(folder / f"{i}.png")
    (folder / "metadata.jsonl").write_text(
        "".join(
            json.dumps({"file_name": f"{i}.png", "question": "is it dark?", "answer": "yes"}) + "\n"
            for i in range(3)
        )
    )
    report = convert_hf_dataset(
        str(folder), tmp_path / "out", question_column="question", text_column="answer"
    )
    assert report.written == {"train": 3}
    row = json.loads((tmp_path / "out/train.jsonl").read_text().splitlines()[0])
    assert (
        row["conversations"][0]["value"] == "is it dark?"
        and row["conversations"][1]["value"] == "yes"
    )


def test_missing_column_is_named(tmp_path: Path) -> None:
    _radiology_like().save_to_disk(tmp_path / "hf")
    with pytest.raises(ValueError, match=r"no column\(s\) \['answer'\]"):
        convert_hf_dataset(str(tmp_path / "hf"), tmp_path / "o", text_column="answer")
