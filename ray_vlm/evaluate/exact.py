"""Exact-match accuracy (the PaliGemma guide's prescription-recognition task).

``exact_match(predictions, references) -> float``: the share of predictions equal to one of
their references after ``normalize_text`` (strip, lower-case, collapse whitespace);
``references[i]`` is the list of accepted texts for prediction i. ``exact_match_per_sample``
gives 1.0 / 0.0 per prediction.
"""

from __future__ import annotations

from ray_vlm.evaluate.pairs import check_pairs


def normalize_text(text: str) -> str:
    return " ".join(text.lower().split())


def exact_match_per_sample(predictions: list[str], references: list[list[str]]) -> list[float]:
    check_pairs(predictions, references)
    return [
        float(normalize_text(p) in {normalize_text(r) for r in refs})
        for p, refs in zip(predictions, references, strict=True)
    ]


def exact_match(predictions: list[str], references: list[list[str]]) -> float:
    scores = exact_match_per_sample(predictions, references)
    return sum(scores) / len(scores) if scores else 0.0
