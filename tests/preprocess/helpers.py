"""Small record files for preprocessing tests."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ray_vlm.records import DatamixEntry, DatasetSpec, resolve_spec


def write_plm(
    folder: Path, rows: list[dict], images: dict[str, bytes | None] | None = None
) -> DatasetSpec:
    """``folder/train.jsonl`` with ``rows`` (dicts, or raw strings written as-is) and images.

    ``images`` maps a file name to raw bytes, or ``None`` for a valid 64x64 PNG.
    """
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name, data in (images or {}).items():
        if data is None:
            Image.new("RGB", (64, 64), (200, 30, 30)).save(folder / "images" / name)
        else:
            (folder / "images" / name).write_bytes(data)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    return resolve_spec(folder.name, DatasetSpec(annotation=str(folder / "train.jsonl")))


def qa(question: str, answer: str, image: str | None = "a.png") -> dict:
    row = {
        "conversations": [
            {"from": "human", "value": question},
            {"from": "assistant", "value": answer},
        ]
    }
    return {"image": image, **row} if image else row


def source(spec: DatasetSpec, weight: float = 1.0) -> tuple[DatamixEntry, DatasetSpec]:
    return DatamixEntry(spec.name, weight, 1.0), spec
