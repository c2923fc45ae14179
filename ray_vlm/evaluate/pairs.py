"""The input check every metric shares: one non-empty list of references per prediction."""

from __future__ import annotations

from collections.abc import Sequence


def check_pairs(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    """Raise an actionable ``ValueError`` unless every prediction has >= 1 reference."""
    if isinstance(predictions, str) or any(isinstance(r, str) for r in references):
        raise ValueError(
            "pass predictions as a list of strings and references as a list of lists of "
            'strings (one list per prediction, e.g. [["a dog"], ["a cat", "the cat"]])'
        )
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} reference lists: "
            "pass one list of references per prediction, in the same order"
        )
    empty = [i for i, refs in enumerate(references) if not refs]
    if empty:
        raise ValueError(f"samples {empty[:10]} have no reference text: drop them or add one")
