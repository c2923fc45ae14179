"""Annotation files with the ordinary defects users' files have, in both guides' layouts, and the
line of every record in them that must be reported (the other records are good).

- ``plm/train.jsonl`` (Perception LM): a non-UTF-8 byte, raw U+2028 / U+2029 / U+0085 inside a
  JSON string (content, not line breaks: that record is good), a line nested 5,000 deep, a
  300-character image name, blank lines, an image over ``MAX_PIXELS``, a cut-off line, a CRLF
  line, and a last line without its newline; good records after every one of them.
- ``paligemma/training_labels.csv`` (the PaliGemma guide's CSV variant, ``IMAGE,MEDICINE_NAME``):
  a BOM, a quoted multi-line name, a quoted comma, a blank line, a field over the csv module's
  limit, a row with an extra field, a non-UTF-8 byte, a trailing blank line.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from PIL import Image

MAX_PIXELS = 100 * 100
"""``data.max_image_pixels`` the corpus is checked with: ``big.png`` (200 x 200) is over it."""


def _qa(image: str, question: str = "What is shown?", answer: str = "a red square") -> dict:
    return {
        "image": image,
        "conversations": [
            {"from": "human", "value": f"<image>\n{question}"},
            {"from": "assistant", "value": answer},
        ],
    }


def _line(row: dict) -> bytes:
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


PLM_BAD = {2: "not UTF-8", 4: "nested too deeply", 5: "cannot be looked up", 9: "not valid JSON"}
"""Line -> reason of the records any reader reports."""
PLM_BAD_IMAGES = {8: "max_image_pixels"}
"""Line -> reason of the records the processor stage reports (their image is over the bound)."""
PLM_GOOD = [1, 3, 10, 11, 12, 13]

CSV_BAD = {7: "field larger than field limit", 8: "3 fields", 10: "not UTF-8"}
CSV_GOOD = [2, 3, 5, 9, 11]


def write_corpus(folder: Path) -> Path:
    """Both files, their images and ``datasets.yaml`` (``hostile_plm``, ``prescription_train``: the
    CSV, ``prescription_val``: two good rows) under ``folder``; returns the registry's path."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name, size, colour in [("a.png", 64, (200, 30, 30)), ("b.png", 48, (30, 30, 200)),
                               ("big.png", 200, (30, 200, 30))]:  # fmt: skip
        Image.new("RGB", (size, size), colour).save(images / name)
    plm = [
        _line(_qa("a.png")),  # 1
        _line(_qa("a.png", "caf\u00e9")).replace("\u00e9".encode(), b"\xe9"),  # 2: Latin-1
        _line(_qa("b.png", "line\u2028sep\u2029para", "a blue\u0085square")),  # 3
        b"[" * 5000 + b"]" * 5000,  # 4
        _line(_qa("x" * 300 + ".png")),  # 5
        b"",  # 6
        b"   \t",  # 7
        _line(_qa("big.png", answer="a green square")),  # 8
        _line(_qa("a.png"))[:30],  # 9
        _line(_qa("b.png", answer="a blue square")) + b"\r",  # 10
        _line(_qa("a.png", "What colour?", "red")),  # 11
        _line(_qa("b.png", "What colour?", "blue")),  # 12
        _line(_qa("a.png", "Which shape?", "square")),  # 13, no newline after it
    ]
    (folder / "plm").mkdir(exist_ok=True)
    (folder / "plm/train.jsonl").write_bytes(b"\n".join(plm))
    csv_lines = [
        "\ufeffIMAGE,MEDICINE_NAME".encode(),  # 1
        b"a.png,Aceta",  # 2
        b'b.png,"Multi',  # 3
        b'line name"',  # 4
        b'a.png,"Amoxi, 500 mg"',  # 5
        b"",  # 6
        b'a.png,"' + b"x" * 140_000 + b'"',  # 7
        b"a.png,Extra,field",  # 8
        b"b.png,Ibupro",  # 9
        b"a.png,Parac\xe9tamol",  # 10
        b"b.png,Cetiri",  # 11
        b"",  # 12: a trailing blank line
    ]
    (folder / "paligemma").mkdir(exist_ok=True)
    (folder / "paligemma/training_labels.csv").write_bytes(b"\n".join(csv_lines) + b"\n")
    (folder / "paligemma/validation_labels.csv").write_text("IMAGE,MEDICINE_NAME\nb.png,Ibupro\n")
    registry = {  # relative to this file's folder, as the guides write them
        "hostile_plm": {"annotation": "plm/train.jsonl", "root_dir": "images"},
        "prescription_train": {"annotation": "paligemma/training_labels.csv", "root_dir": "images"},
        "prescription_val": {"annotation": "paligemma/validation_labels.csv", "root_dir": "images"},
    }
    (folder / "datasets.yaml").write_text(yaml.safe_dump(registry))
    return folder / "datasets.yaml"
