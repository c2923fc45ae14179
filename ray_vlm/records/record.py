"""The one typed record every input format is normalised to, and the report of a bad one."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

USER = "user"
ASSISTANT = "assistant"


@dataclass(frozen=True)
class Turn:
    """One chat turn. ``role`` is ``user`` or ``assistant``; ``text`` never contains ``<image>``."""

    role: str
    text: str


@dataclass(frozen=True)
class Record:
    """One training/evaluation example.

    ``images``: absolute paths of the example's images, in order (empty for a text-only record);
    every image is shown before the first user turn's text, as PLM and LLaVA place them.
    ``turns``: alternating user/assistant turns, starting with ``user``, ending with ``assistant``.
    ``source``: where it came from, ``file:line`` (1-based), for error messages.
    ``dataset``: the registry name of its source.
    ``question_type``: the kind of question (``colour``, ``yes/no``, ...) that evaluation breaks
    accuracy down by, as VQAv2 does per answer type; ``None`` when the record has none.
    ``position``: its place in a training run's data plan (``preprocess.stream_plan``), -1 outside.
    """

    dataset: str
    source: str
    images: tuple[str, ...]
    turns: tuple[Turn, ...]
    question_type: str | None = None
    position: int = -1

    @property
    def prompt(self) -> str:
        """Text of the first user turn (the question / PaliGemma prefix)."""
        return self.turns[0].text

    @property
    def answer(self) -> str:
        """Text of the last assistant turn (the caption / answer / PaliGemma suffix)."""
        return self.turns[-1].text

    def to_row(self) -> dict[str, Any]:
        """A flat dict with only list/str values (a Ray Data / Arrow row); no question type is
        ``""`` (a column of one Arrow type, whichever blocks have types)."""
        return {
            "dataset": self.dataset,
            "source": self.source,
            "images": list(self.images),
            "roles": [t.role for t in self.turns],
            "texts": [t.text for t in self.turns],
            "question_type": self.question_type or "",
            "position": self.position,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        """The inverse of ``to_row``."""
        turns = tuple(Turn(r, t) for r, t in zip(row["roles"], row["texts"], strict=True))
        images, position = tuple(row["images"]), int(row["position"])
        question_type = row["question_type"] or None
        return cls(row["dataset"], row["source"], images, turns, question_type, position)


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be used: ``source`` is ``file:line``, ``reason`` says what to fix."""

    dataset: str
    source: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class RecordError(ValueError):
    """Raised by a format parser for one bad record; the reader turns it into a ``BadRecord``."""
