"""CIDEr-D speed: ray_vlm's vectorised scorer vs pycocoevalcap's ``Cider`` on the same input.

Run: ``.venv/bin/python benchmarks/metric_speed.py [--repeats K] [--images N]``. Builds 20,000
seeded synthetic captions (5 references each, a caption-like vocabulary with punctuation and
capitals), PTB-tokenises them once with ``ray_vlm.evaluate.ptb_tokenize``, then times both
scorers on that tokenised text, ``K`` times (default 5), one after the other in each repeat.
Prints one JSON line: ``ours_s``, ``reference_s`` (medians over the repeats), ``speedup`` (the
median of the per-repeat speedups, all of them under ``speedups``), ``abs_diff`` (max over
images, the corpus score and the repeats), plus ``tokenize_s`` (our pure-Python PTB tokenisation
of all 120,000 texts). Times are CPU seconds of this process (``time.process_time``), so other
load on a shared machine does not skew the ratio; both scorers are single-threaded. Targets:
speedup >= 5, abs_diff <= 1e-6. ``--smoke``: 1,000 captions, 2 repeats (the same code, seconds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import numpy as np
from pycocoevalcap.cider.cider import Cider

from ray_vlm.evaluate.cider import cider_scores_tokenized
from ray_vlm.evaluate.ptb_tokenize import ptb_tokenize

N_IMAGES = 20_000
N_REFS = 5
SEED = 0

ADJECTIVES = ("red", "blue", "green", "white", "black", "small", "large", "young", "old", "tall")
NOUNS = ("man", "woman", "child", "dog", "cat", "horse", "bus", "train", "car", "bike", "table")
NOUNS += ("plate", "pizza", "street", "field", "beach", "kitchen", "room", "bench", "tree", "sky")
NOUNS += ("water", "boat", "plane", "umbrella", "laptop", "phone", "bird", "giraffe", "elephant")
VERBS = ("sitting", "standing", "riding", "holding", "eating", "walking", "running", "parked")
PLACES = ("on", "in", "near", "next to", "under", "beside", "behind", "in front of", "at")


def _caption(rng: random.Random) -> str:
    words = ["A" if rng.random() < 0.5 else "a"]
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.5:
            words.append(rng.choice(ADJECTIVES))
        words += [rng.choice(NOUNS), rng.choice(VERBS), rng.choice(PLACES), "the"]
    words.append(rng.choice(NOUNS))
    text = " ".join(words)
    return text + rng.choice([".", "", " .", "!", ", outside."])


def timed(scorer, *args):
    """``(result, CPU seconds)`` of ``scorer(*args)``."""
    start = time.process_time()
    result = scorer(*args)
    return result, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timings; medians are reported")
    parser.add_argument("--images", type=int, default=N_IMAGES, help="predictions scored")
    parser.add_argument("--smoke", action="store_true", help="1,000 captions, 2 repeats")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.repeats = 1_000, 2
    rng = random.Random(SEED)
    predictions = [_caption(rng) for _ in range(args.images)]
    references = [[_caption(rng) for _ in range(N_REFS)] for _ in range(args.images)]

    start = time.process_time()
    hyp = [ptb_tokenize(p) for p in predictions]
    refs = [[ptb_tokenize(r) for r in rs] for rs in references]
    tokenize_s = time.process_time() - start

    ids = range(args.images)
    gts, res = {i: refs[i] for i in ids}, {i: [hyp[i]] for i in ids}
    ours_s, reference_s, abs_diff = [], [], 0.0
    for _ in range(args.repeats):
        ours, seconds = timed(cider_scores_tokenized, hyp, refs)
        ours_s.append(seconds)
        (reference_mean, reference), seconds = timed(Cider().compute_score, gts, res)
        reference_s.append(seconds)
        diff = max(float(np.abs(ours - reference).max()), abs(ours.mean() - reference_mean))
        abs_diff = max(abs_diff, diff)
    speedups = [r / o for o, r in zip(ours_s, reference_s, strict=True)]
    result = {
        "n_predictions": args.images,
        "n_references_each": N_REFS,
        "repeats": args.repeats,
        "ours_s": round(statistics.median(ours_s), 4),
        "reference_s": round(statistics.median(reference_s), 4),
        "speedup": round(statistics.median(speedups), 2),
        "speedups": [round(x, 2) for x in speedups],
        "abs_diff": abs_diff,
        "cider": float(ours.mean()),
        "tokenize_s": round(tokenize_s, 4),
    }
    if args.smoke:
        result["smoke"] = True
    print(json.dumps(result))


if __name__ == "__main__":
    main()
