"""Prediction rows -> scored samples: references gathered, each task's metrics computed once.

A *sample* is one (images, question) pair with every reference answer the split gives it (COCO
captions have several per image; a VQA record one). Scores are computed once over all gathered
samples — CIDEr's document frequencies depend on the whole set, so never per shard.
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


def gather_samples(rows: list[dict[str, Any]]) -> list[Sample]:
    """One ``Sample`` per (images, question), references in file order; sorted by ``id``."""
    samples: dict[tuple, Sample] = {}
    for row in sorted(rows, key=lambda r: _file_order(r["id"])):
        key = (tuple(row["images"]), row["question"])
        if key in samples:
            samples[key].references.append(row["reference"])
        else:
            samples[key] = Sample(
                row["id"], list(row["images"]), row["question"], [row["reference"]],
                row["prediction"], row["error"],
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


def score_samples(task: str, samples: list[Sample]) -> dict[str, Any]:
    """Set each sample's ``score``; return the task's corpus metrics plus ``samples`` and
    ``failed`` (samples without a prediction: they score as an empty answer)."""
    if not samples:
        raise ValueError("no sample to score: every record of the split was invalid")
    per_sample, metrics = SCORERS[task](
        [s.prediction for s in samples], [s.references for s in samples]
    )
    for sample, value in zip(samples, per_sample, strict=True):
        sample.score = float(value)
    return {**metrics, "samples": len(samples), "failed": sum(bool(s.error) for s in samples)}
