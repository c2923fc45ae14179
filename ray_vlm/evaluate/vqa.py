"""VQA accuracy (official formula) and the VQA-RAD closed/open convention.

``vqa_accuracy(predictions, answers) -> float``: ``answers[i]`` holds the human answers for
question i (10 in VQA v2, often 1 in custom sets). Prediction and every answer are normalised with
``normalize_answer`` (custom answers are raw, unlike the official pre-normalised annotations).
With k >= 2 answers the score is the official leave-one-out mean
``mean_j min(1, #{answers other than j equal to the prediction} / 3)``; with one answer it is
normalised exact match. ``vqa_accuracy_per_sample`` gives the per-question scores (their mean is
the corpus score).

``vqa_rad_scores(predictions, answers)`` follows the VQA-RAD / LLaVA-Med convention without its
bugs: a question is *closed* when its answers normalise to ``yes`` / ``no``; it is correct when
the first whole ``yes``/``no`` token of the prediction equals the answer (no such token: wrong,
still counted). Open questions score the recall of the answer's tokens among the prediction's
tokens (whole normalised tokens, so ``no`` does not match ``normal``), the best over answers.
"""

from __future__ import annotations

from collections import Counter

from ray_vlm.evaluate.pairs import check_pairs
from ray_vlm.evaluate.vqa_normalize import normalize_answer

_CLOSED = ("yes", "no")


def _leave_one_out(prediction: str, answers: list[str]) -> float:
    if len(answers) == 1:
        return float(prediction == answers[0])
    matches = sum(a == prediction for a in answers)
    # Leaving answer j out removes one match exactly when answer j itself matches.
    return sum(min(1.0, (matches - (a == prediction)) / 3) for a in answers) / len(answers)


def vqa_accuracy_per_sample(predictions: list[str], answers: list[list[str]]) -> list[float]:
    check_pairs(predictions, answers)
    return [
        _leave_one_out(normalize_answer(p), [normalize_answer(a) for a in refs])
        for p, refs in zip(predictions, answers, strict=True)
    ]


def vqa_accuracy(predictions: list[str], answers: list[list[str]]) -> float:
    scores = vqa_accuracy_per_sample(predictions, answers)
    return sum(scores) / len(scores) if scores else 0.0


def _closed_correct(prediction: list[str], answer: str) -> float:
    said = next((t for t in prediction if t in _CLOSED), None)
    return float(said == answer)


def _recall(prediction: list[str], answer: list[str]) -> float:
    found = Counter(answer) & Counter(prediction)
    return sum(found.values()) / len(answer) if answer else 0.0


def vqa_rad_per_sample(predictions: list[str], answers: list[list[str]]) -> list[tuple[str, float]]:
    """``("closed" | "open", score in [0, 1])`` per question."""
    check_pairs(predictions, answers)
    out = []
    for p, refs in zip(predictions, answers, strict=True):
        tokens = normalize_answer(p).split()
        normalised = [normalize_answer(a) for a in refs]
        if all(a in _CLOSED for a in normalised):
            out.append(("closed", max(_closed_correct(tokens, a) for a in normalised)))
        else:
            out.append(("open", max(_recall(tokens, a.split()) for a in normalised)))
    return out


def vqa_rad_scores(predictions: list[str], answers: list[list[str]]) -> dict[str, float | None]:
    """``{"closed_accuracy", "open_recall", "n_closed", "n_open"}``; a kind with no questions
    scores ``None`` (not 0: there is nothing to score)."""
    per_sample = vqa_rad_per_sample(predictions, answers)
    closed = [s for kind, s in per_sample if kind == "closed"]
    open_ = [s for kind, s in per_sample if kind == "open"]
    return {
        "closed_accuracy": sum(closed) / len(closed) if closed else None,
        "open_recall": sum(open_) / len(open_) if open_ else None,
        "n_closed": len(closed),
        "n_open": len(open_),
    }
