"""Each record format parsed from files in its guide's exact layout; bad records with file:line."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ray_vlm.records import BadRecord, DatasetSpec, Record, Turn, read_records, resolve_spec

RADIOLOGY_PROMPT = "You are an expert radiographer. Describe accurately what you see in this image."


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path)


def _read(annotation: Path, **spec) -> list[Record | BadRecord]:
    return list(read_records(resolve_spec("ds", DatasetSpec(annotation=str(annotation), **spec))))


def test_plm_radiology_layout(tmp_path: Path) -> None:
    root = tmp_path / "Radiology_mini"
    _png(root / "images/ROCOv2_2023_train_054311.png")
    _png(root / "images/b.png")
    rows = [
        {
            "image": "ROCOv2_2023_train_054311.png",
            "conversations": [
                {"from": "human", "value": RADIOLOGY_PROMPT},
                {"from": "assistant", "value": "Panoramic radiography shows an osteolytic lesion."},
            ],
        },
        {  # multi-turn, LLaVA's "gpt" role and <image> placeholder
            "image": "b.png",
            "conversations": [
                {"from": "human", "value": "<image>\nWhat is it?"},
                {"from": "gpt", "value": "A red square."},
                {"from": "human", "value": "Which colour?"},
                {"from": "gpt", "value": "Red."},
            ],
        },
        {
            "conversations": [
                {"from": "human", "value": "2+2?"},
                {"from": "assistant", "value": "4"},
            ]
        },
    ]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    first, multi, text_only = _read(root / "train.jsonl", root_dir=str(root / "images"))
    assert first.images == (str(root / "images/ROCOv2_2023_train_054311.png"),)
    assert first.turns == (
        Turn("user", RADIOLOGY_PROMPT),
        Turn("assistant", rows[0]["conversations"][1]["value"]),
    )
    assert first.source == f"{root / 'train.jsonl'}:1"
    assert (
        multi.prompt == "What is it?" and [t.role for t in multi.turns] == ["user", "assistant"] * 2
    )
    assert text_only.images == () and text_only.answer == "4"


def test_paligemma_guide_layout_json_and_csv(tmp_path: Path) -> None:
    base = tmp_path / "Doctor’s Handwritten Prescription BD dataset"
    for split in ("Training", "Validation", "Testing"):
        _png(base / split / "images/0.png")
        _png(base / split / "images/1.png")
        (base / split / f"{split.lower()}_labels.json").write_text(
            '{"prefix": "", "suffix": "Aceta", "image": "0.png"}\n{"prefix": "", "suffix": "Ibuprofen", "image": "1.png"}\n'
        )
        (base / split / f"{split.lower()}_labels.csv").write_text(
            "IMAGE,MEDICINE_NAME\n0.png,Aceta\n1.png,Ibuprofen\n"
        )
    for split in ("Training", "Validation", "Testing"):
        folder = base / split
        from_json = _read(folder / f"{split.lower()}_labels.json", lowercase=True)
        from_csv = _read(folder / f"{split.lower()}_labels.csv", lowercase=True)
        assert [(r.prompt, r.answer) for r in from_json] == [
            ("caption en", "aceta"),
            ("caption en", "ibuprofen"),
        ]
        assert [(r.images, r.turns) for r in from_json] == [(r.images, r.turns) for r in from_csv]
        assert from_json[1].images == (str(folder / "images/1.png"),)  # images/ beside the labels
        assert from_csv[1].source.endswith("_labels.csv:3")  # header is line 1


def test_every_kind_of_bad_record_is_reported_with_file_and_line(tmp_path: Path) -> None:
    _png(tmp_path / "images/ok.png")
    (tmp_path / "images/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = {
        "image": "ok.png",
        "conversations": [{"from": "human", "value": "q"}, {"from": "assistant", "value": "a"}],
    }
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"image": "ok.png"}),
        json.dumps({**good, "image": "missing.png"}),
        json.dumps(
            {
                **good,
                "conversations": [
                    {"from": "human", "value": "q"},
                    {"from": "assistant", "value": " "},
                ],
            }
        ),
        json.dumps({**good, "image": "broken.png"}),
        "",
        json.dumps({**good, "conversations": [{"from": "robot", "value": "q"}]}),
        json.dumps({**good, "conversations": [{"from": "human", "value": "q"}]}),
        json.dumps(
            {
                **good,
                "conversations": [
                    {"from": "human", "value": "<image><image> q"},
                    {"from": "gpt", "value": "a"},
                ],
            }
        ),
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    results = _read(tmp_path / "train.jsonl")
    bad = {int(r.source.rsplit(":", 1)[1]): r.reason for r in results if isinstance(r, BadRecord)}
    assert [r.source for r in results if isinstance(r, Record)] == [f"{tmp_path / 'train.jsonl'}:1"]
    assert set(bad) == {2, 3, 4, 5, 6, 8, 9, 10}  # line 7 is blank, not a record
    assert "not valid JSON" in bad[2]
    assert "missing field 'conversations'" in bad[3]
    assert "image 'missing.png' not found" in bad[4]
    assert "empty answer" in bad[5]
    assert "cannot be decoded" in bad[6]
    assert "'from' must be one of" in bad[8]
    assert "last turn must be the assistant" in bad[9]
    assert "2 <image> placeholders but 1 images" in bad[10]
    assert all(r.source.startswith(str(tmp_path / "train.jsonl")) for r in results)


def test_paligemma_bad_records(tmp_path: Path) -> None:
    _png(tmp_path / "images/0.png")
    (tmp_path / "labels.json").write_text(
        '{"prefix": "", "image": "0.png"}\n{"prefix": "", "suffix": "", "image": "0.png"}\n'
        '{"prefix": "", "suffix": "x", "image": "9.png"}\n'
    )
    reasons = [r.reason for r in _read(tmp_path / "labels.json", format="paligemma")]
    assert reasons == [
        "missing field 'suffix'",
        "empty answer: 'suffix' must be a non-empty string",
        f"image '9.png' not found under {tmp_path / 'images'} (check root_dir)",
    ]
