"""Prediction rows -> scored samples: references gathered, each task's metrics computed once.

A *sample* is one (images, question) pair with every reference answer the split gives it (COCO
captions have several per image; a VQA record one). Scores are computed once over all gathered
samples — CIDEr's document frequencies depend on the whole set, so never per shard. When samples
carry a question type, the primary metric is also broken down by it (``per_question_type``), as
VQAv2 reports accuracy per answer type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray_vlm.evaluate.cider import cider_per_sample
from ray_vlm.evaluate.exact import exact_match_per_sample
from ray_vlm.evaluate.text_metrics import bleu4, rouge_l
from ray_vlm.evaluate.vqa import vqa_accuracy_per_sample, vqa_rad_scores

Scorer = Callable[[list[str], list[list[str]]], tuple[list[float], dict[str, Any]]]


@dataclass
class Sample:
    id: str
    """``file:line`` of the sample's first record."""
    images: list[str]
    question: str
    references: list[str]
    prediction: str
    error: str
    """Why there is no prediction (unreadable image, failed generation); "" when there is one."""
    score: float = 0.0
    question_type: str | None = None
    """The record's question type (``colour``, ``yes/no``, ...); ``None`` when it has none."""


def gather_samples(rows: list[dict[str, Any]]) -> list[Sample]:
    """One ``Sample`` per (images, question), references in file order; sorted by ``id``. A
    sample's question type is its first record's."""
    samples: dict[tuple, Sample] = {}
    for row in sorted(rows, key=lambda r: _file_order(r["id"])):
        key = (tuple(row["images"]), row["question"])
        if key in samples:
            samples[key].references.append(row["reference"])
        else:
            samples[key] = Sample(
                row["id"], list(row["images"]), row["question"], [row["reference"]],
                row["prediction"], row["error"], question_type=row["question_type"] or None,
            )  # fmt: skip
    return list(samples.values())


def _file_order(source: str) -> tuple[str, int]:
    path, _, line = source.rpartition(":")
    return path, int(line)


def _caption(preds: list[str], refs: list[list[str]]) -> tuple[list[float], dict[str, Any]]:
    per_sample = cider_per_sample(preds, refs)
    return per_sample, {
        "cider": sum(per_sample) / len(per_sample),
        "bleu4": bleu4(preds, refs),
        "rouge_l": rouge_l(preds, refs),
    }


def _vqa(preds: list[str], refs: list[list[str]]) -> tuple[list[float], dict[str, Any]]:
    per_sample = vqa_accuracy_per_sample(preds, refs)
    return per_sample, {
        "vqa_accuracy": sum(per_sample) / len(per_sample),
        **vqa_rad_scores(preds, refs),
    }


def _exact(preds: list[str], refs: list[list[str]]) -> tuple[list[float], dict[str, Any]]:
    per_sample = exact_match_per_sample(preds, refs)
    return per_sample, {"exact_match": sum(per_sample) / len(per_sample)}


SCORERS: dict[str, Scorer] = {"caption": _caption, "vqa": _vqa, "exact": _exact}
PRIMARY_METRIC = {"caption": "cider", "vqa": "vqa_accuracy", "exact": "exact_match"}
UNTYPED = "(none)"
"""The group of samples without a question type, in a split where others have one."""


def per_question_type(task: str, samples: list[Sample]) -> dict[str, dict[str, Any]]:
    """``{type: {<primary metric>: mean score of its samples, "count": n}}``, types in order of
    first appearance; ``{}`` when no sample has a type. Reads the scores ``score_samples`` set:
    for every task the corpus metric is the mean of these per-sample scores (CIDEr-D's use the
    whole set's document frequencies), so each type's value is that metric on its samples."""
    if all(s.question_type is None for s in samples):
        return {}
    groups: dict[str, list[float]] = {}
    for sample in samples:
        groups.setdefault(sample.question_type or UNTYPED, []).append(sample.score)
    metric = PRIMARY_METRIC[task]
    return {t: {metric: sum(v) / len(v), "count": len(v)} for t, v in groups.items()}


def score_samples(task: str, samples: list[Sample]) -> dict[str, Any]:
    """Set each sample's ``score``; return the task's corpus metrics plus ``samples``, ``failed``
    (samples without a prediction: they score as an empty answer) and, when samples carry
    question types, ``per_question_type`` (see ``per_question_type``)."""
    if not samples:
        raise ValueError("no sample to score: every record of the split was invalid")
    per_sample, metrics = SCORERS[task](
        [s.prediction for s in samples], [s.references for s in samples]
    )
    for sample, value in zip(samples, per_sample, strict=True):
        sample.score = float(value)
    by_type = per_question_type(task, samples)
    return {
        **metrics,
        "samples": len(samples),
        "failed": sum(bool(s.error) for s in samples),
        **({"per_question_type": by_type} if by_type else {}),
    }
