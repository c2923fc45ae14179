"""A record's question type: the PLM record's field, else the registry entry's default, else None;
carried unchanged through the Ray Data row form."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ray_vlm.records import BadRecord, Record, Turn, read_records, select_datamix


def _conversation(question: str, answer: str, **extra) -> str:
    turns = [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    return json.dumps({"image": "a.png", "conversations": turns, **extra})


def _registry(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images/a.png")
    (tmp_path / "vqa.jsonl").write_text(
        "\n".join(
            [
                _conversation("What colour?", "red", question_type="colour"),
                _conversation("Where?", "left"),
                _conversation("What shape?", "circle", question_type=3),
            ]
        )
        + "\n"
    )
    (tmp_path / "captions.jsonl").write_text(_conversation("Describe.", "a red circle") + "\n")
    registry = tmp_path / "datasets.yaml"
    registry.write_text(
        f"vqa:\n    annotation: {tmp_path / 'vqa.jsonl'}\n    question_type: other\n"
        f"captions:\n    annotation: {tmp_path / 'captions.jsonl'}\n"
    )
    return registry


def test_record_field_then_entry_default_then_none(tmp_path: Path) -> None:
    specs = dict((e.name, s) for e, s in select_datamix("vqa:1,captions:1", _registry(tmp_path)))
    colour, where, bad = read_records(specs["vqa"])
    assert (colour.question_type, where.question_type) == ("colour", "other")
    assert isinstance(bad, BadRecord) and "'question_type' must be a string" in bad.reason
    (caption,) = read_records(specs["captions"])
    assert caption.question_type is None


def test_row_round_trip_keeps_the_type() -> None:
    turns = (Turn("user", "q"), Turn("assistant", "a"))
    for question_type in ("colour", None):
        record = Record("d", "f.jsonl:1", ("/x.png",), turns, question_type)
        row = record.to_row()
        assert isinstance(row["question_type"], str)  # one Arrow type in every block
        assert Record.from_row(row) == record
