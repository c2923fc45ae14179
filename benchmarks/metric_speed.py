"""CIDEr-D speed: ray_vlm's vectorised scorer vs pycocoevalcap's ``Cider`` on the same input.

Run: ``.venv/bin/python benchmarks/metric_speed.py``. Builds 5,000 seeded synthetic captions
(5 references each, a caption-like vocabulary with punctuation and capitals), PTB-tokenises them
once with ``ray_vlm.evaluate.ptb_tokenize``, then times both scorers on that tokenised text.
Prints one JSON line: ``ours_s``, ``reference_s``, ``speedup``, ``abs_diff`` (max over images
and the corpus score), plus ``tokenize_s`` (our pure-Python PTB tokenisation of all 30,000
texts). Times are CPU seconds of this process (``time.process_time``), so other load on a shared
machine does not skew the ratio; both scorers are single-threaded. Targets: speedup >= 5,
abs_diff <= 1e-6.
"""

from __future__ import annotations

import json
import random
import time

import numpy as np
from pycocoevalcap.cider.cider import Cider

from ray_vlm.evaluate.cider import cider_scores_tokenized
from ray_vlm.evaluate.ptb_tokenize import ptb_tokenize

N_IMAGES = 5_000
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


def main() -> None:
    rng = random.Random(SEED)
    predictions = [_caption(rng) for _ in range(N_IMAGES)]
    references = [[_caption(rng) for _ in range(N_REFS)] for _ in range(N_IMAGES)]

    start = time.process_time()
    hyp = [ptb_tokenize(p) for p in predictions]
    refs = [[ptb_tokenize(r) for r in rs] for rs in references]
    tokenize_s = time.process_time() - start

    start = time.process_time()
    ours = cider_scores_tokenized(hyp, refs)
    ours_s = time.process_time() - start

    start = time.process_time()
    ids = range(N_IMAGES)
    reference_mean, reference = Cider().compute_score(
        {i: refs[i] for i in ids}, {i: [hyp[i]] for i in ids}
    )
    reference_s = time.process_time() - start

    abs_diff = max(float(np.abs(ours - reference).max()), abs(ours.mean() - reference_mean))
    result = {
        "n_predictions": N_IMAGES,
        "n_references_each": N_REFS,
        "ours_s": round(ours_s, 4),
        "reference_s": round(reference_s, 4),
        "speedup": round(reference_s / ours_s, 2),
        "abs_diff": abs_diff,
        "cider": float(ours.mean()),
        "tokenize_s": round(tokenize_s, 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
