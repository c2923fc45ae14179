"""Parsers from one decoded annotation item to a ``Record``; each raises ``RecordError`` with a
reason a user can act on. Paths are checked for existence here; decoding is ``images.py``'s job.

- ``plm``: ``{"image": "x.png" | [...] | absent, "conversations": [{"from": "human", "value": ..},
  {"from": "assistant" | "gpt", "value": ..}, ...], "question_type": "colour" (optional)}``;
  ``<image>`` placeholders are optional. Without ``question_type`` the entry's default applies.
- ``paligemma``: ``{"prefix": "", "suffix": "Aceta", "image": "0.png"}``.
- ``paligemma_csv``: a CSV row with the guide's ``IMAGE`` and ``MEDICINE_NAME`` columns.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ray_vlm.records.record import ASSISTANT, USER, Record, RecordError, Turn
from ray_vlm.records.registry import DatasetSpec
from ray_vlm.storage import Location, is_uri

ROLES = {"human": USER, "user": USER, "gpt": ASSISTANT, "assistant": ASSISTANT}
IMAGE_PLACEHOLDER = re.compile(r"\s*<image>\s*")


def _image_path(spec: DatasetSpec, name: Any) -> str:
    """The image's path under ``root_dir``. A URI root is not listed per record (one request per
    image); a missing image there is reported when it is read (an ``image`` error)."""
    if not isinstance(name, str) or not name.strip():
        raise RecordError(f"'image' must be a file name, got {name!r}")
    if is_uri(spec.root_dir or ""):
        return str(Location.of(spec.root_dir or "") / name)
    path = Path(spec.root_dir or "") / name
    try:
        found = path.is_file()
    except OSError as err:  # a name too long for the filesystem, ...
        raise RecordError(f"image '{_short(name)}' cannot be looked up ({err.strerror})") from None
    if not found:
        raise RecordError(
            f"image '{_short(name)}' not found under {spec.root_dir} (check root_dir)"
        )
    return str(path)


def _short(name: str, keep: int = 80) -> str:
    """``name`` for a message: at most ``keep`` characters, its length said when cut."""
    return name if len(name) <= keep else f"{name[:keep]}... ({len(name)} characters)"


def _answer(spec: DatasetSpec, text: str) -> str:
    return text.lower() if spec.lowercase else text


def _question_type(item: dict[str, Any], spec: DatasetSpec) -> str | None:
    value = item.get("question_type", spec.question_type)
    if value is not None and not isinstance(value, str):
        raise RecordError(f"'question_type' must be a string, got {value!r}")
    return value or None


def parse_plm(item: Any, spec: DatasetSpec, source: str) -> Record:
    if not isinstance(item, dict):
        raise RecordError("a PLM record must be a JSON object with 'conversations'")
    convs = item.get("conversations")
    if not isinstance(convs, list) or not convs:
        raise RecordError("missing field 'conversations' (a non-empty list of {from, value})")
    raw_images = item.get("image", [])
    names = [raw_images] if isinstance(raw_images, str) else raw_images
    if not isinstance(names, list):
        raise RecordError(f"'image' must be a file name or a list of them, got {raw_images!r}")
    images = tuple(_image_path(spec, n) for n in names)
    turns, placeholders = [], 0
    for i, turn in enumerate(convs):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise RecordError(f"conversations[{i}] needs a string 'value'")
        role = ROLES.get(str(turn.get("from", "")).lower())
        if role is None:
            raise RecordError(f"conversations[{i}]: 'from' must be one of {', '.join(ROLES)}")
        expected = USER if i % 2 == 0 else ASSISTANT
        if role != expected:
            raise RecordError(
                f"conversations[{i}] is '{turn['from']}' but turns must alternate human/assistant, human first"
            )
        placeholders += len(IMAGE_PLACEHOLDER.findall(turn["value"]))
        text = IMAGE_PLACEHOLDER.sub(" ", turn["value"]).strip()
        if role == ASSISTANT and not text:
            raise RecordError(f"conversations[{i}]: empty answer")
        turns.append(Turn(role, _answer(spec, text) if role == ASSISTANT else text))
    if turns[-1].role != ASSISTANT:
        raise RecordError("the last turn must be the assistant's answer")
    if placeholders and placeholders != len(images):
        raise RecordError(f"{placeholders} <image> placeholders but {len(images)} images")
    return Record(spec.name, source, images, tuple(turns), _question_type(item, spec))


def _prefix_suffix_record(
    spec: DatasetSpec, source: str, prefix: Any, suffix: Any, image: Any
) -> Record:
    if not isinstance(suffix, str) or not suffix.strip():
        raise RecordError("empty answer: 'suffix' must be a non-empty string")
    if not isinstance(prefix, str):
        raise RecordError(f"'prefix' must be a string, got {prefix!r}")
    turns = (
        Turn(USER, prefix.strip() or spec.prompt),
        Turn(ASSISTANT, _answer(spec, suffix.strip())),
    )
    return Record(spec.name, source, (_image_path(spec, image),), turns, spec.question_type or None)


def parse_paligemma(item: Any, spec: DatasetSpec, source: str) -> Record:
    if not isinstance(item, dict):
        raise RecordError("a PaliGemma record must be a JSON object with 'suffix' and 'image'")
    for key in ("suffix", "image"):
        if key not in item:
            raise RecordError(f"missing field '{key}'")
    return _prefix_suffix_record(
        spec, source, item.get("prefix", ""), item["suffix"], item["image"]
    )


def parse_paligemma_csv(row: dict[str, Any], spec: DatasetSpec, source: str) -> Record:
    for key in ("IMAGE", "MEDICINE_NAME"):
        if row.get(key) is None:
            raise RecordError(f"missing column '{key}'")
    return _prefix_suffix_record(spec, source, "", row["MEDICINE_NAME"], row["IMAGE"])


PARSERS = {"plm": parse_plm, "paligemma": parse_paligemma, "paligemma_csv": parse_paligemma_csv}
