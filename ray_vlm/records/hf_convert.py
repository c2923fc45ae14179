"""Convert a Hugging Face ``datasets`` dataset to the PLM layout, as the PLM radiology guide does.

Writes ``OUT/<split>.jsonl`` (PLM conversations) and ``OUT/images/<id>.png``; register ``OUT`` in
``configs/datasets.yaml`` afterwards. Accepts a ``save_to_disk`` folder, a folder or file of
parquet, an ``imagefolder`` folder, or a hub id (needs network access to the hub).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from ray_vlm.records.record import BadRecord


@dataclass
class ConvertReport:
    written: dict[str, int] = field(default_factory=dict)
    """Records written per split."""
    skipped: list[BadRecord] = field(default_factory=list)
    """Rows that could not be converted, with ``dataset[split]:row`` and a reason."""


def open_dataset(source: str) -> datasets.DatasetDict:
    """Open ``source`` (local folder/file or hub id) as a ``DatasetDict`` of splits."""
    path = Path(source)
    if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
        loaded = datasets.load_from_disk(str(path))
    elif path.suffix == ".parquet":
        loaded = datasets.load_dataset("parquet", data_files={"train": str(path)})
    elif path.is_dir() and any(path.rglob("*.parquet")):
        # Hub layout: <split>-00000-of-00001.parquet (or <split>.parquet) -> split name.
        files: dict[str, list[str]] = {}
        for file in sorted(path.rglob("*.parquet")):
            files.setdefault(file.stem.split("-")[0], []).append(str(file))
        loaded = datasets.load_dataset("parquet", data_files=files)
    elif path.is_dir():
        loaded = datasets.load_dataset("imagefolder", data_dir=str(path))
    else:
        loaded = datasets.load_dataset(source)
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def _conversation(
    row: dict[str, Any], prompt: str, text_column: str, question_column: str | None
) -> list[dict]:
    question = row[question_column] if question_column else prompt
    answer = row[text_column]
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"empty '{text_column}'")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"empty '{question_column}'")
    return [{"from": "human", "value": question}, {"from": "assistant", "value": answer}]


def convert_hf_dataset(
    source: str,
    out: str | Path,
    splits: list[str] | None = None,
    image_column: str = "image",
    text_column: str = "caption",
    question_column: str | None = None,
    id_column: str | None = None,
    prompt: str = "Describe the image.",
) -> ConvertReport:
    """Write each split of ``source`` as PLM jsonl + PNG images under ``out``.

    Captioning: every record asks ``prompt`` and answers ``text_column``. VQA: pass
    ``question_column`` (and ``text_column`` = the answer column). Images are saved as
    ``<id_column value or split_row>.png``.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    dataset = open_dataset(source)
    report = ConvertReport()
    for split in splits or list(dataset):
        if split not in dataset:
            raise ValueError(f"{source} has no split '{split}' (has: {', '.join(dataset)})")
        rows = dataset[split]
        missing = (
            {image_column, text_column, question_column, id_column}
            - {None}
            - set(rows.column_names)
        )
        if missing:
            raise ValueError(
                f"{source}[{split}] has no column(s) {sorted(missing)}; columns: {rows.column_names}"
            )
        written = 0
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for i, row in enumerate(rows):
                where = f"{source}[{split}]:{i}"
                try:
                    conversations = _conversation(row, prompt, text_column, question_column)
                    image = row[image_column]
                    if image is None or not hasattr(image, "save"):
                        raise ValueError(f"'{image_column}' is not an image")
                    name = f"{row[id_column] if id_column else f'{split}_{i:06d}'}.png"
                    image.convert("RGB").save(out / "images" / name)
                except ValueError as err:
                    report.skipped.append(BadRecord(Path(source).name, where, str(err)))
                    continue
                f.write(
                    json.dumps({"image": name, "conversations": conversations}, ensure_ascii=False)
                    + "\n"
                )
                written += 1
        report.written[split] = written
    return report
