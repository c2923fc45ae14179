"""CIDEr-D equals pycocoevalcap's (PTBTokenizer + Cider) on raw captions and CiderScorer on tokens."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pycocoevalcap.cider.cider_scorer import CiderScorer

from ray_vlm.evaluate import cider, cider_per_sample, cider_scores_tokenized
from tests.evaluate.helpers import HAS_JAVA, java_cider

# Punctuation, case, repeated n-grams, single- and multi-reference images, an exact match.
CAPTIONS = [
    (
        "A man riding a horse on the beach.",
        [
            "A man rides a horse along the beach.",
            "a person riding a brown horse on sand",
            "Man on horseback at the BEACH!",
        ],
    ),
    ("a dog a dog a dog a dog", ["A dog lying on a couch.", "a small dog on a sofa"]),
    (
        "Two cats sleeping (on a bed).",
        ["Two cats are sleeping on a bed.", "two kittens asleep on the bed"],
    ),
    (
        "A pizza with cheese, tomatoes and olives...",
        ["A pizza topped with cheese, tomatoes, and olives."],
    ),
    (
        "A bus",
        [
            "A red double-decker bus driving down a street.",
            "a bus on the street",
            "The bus is red.",
        ],
    ),
    (
        "There's a \"STOP\" sign near the road; it's red.",
        ["A red stop sign next to a road.", "stop sign on the side of the road"],
    ),
    ("the the the the the", ["the cat on the mat", "a cat on the mat"]),
    ("A woman holding an umbrella in the rain", ["A woman holding an umbrella in the rain"]),
]
# pycocoevalcap 1.2 (PTBTokenizer with Java 17 + Cider) on CAPTIONS, recorded on this machine.
RECORDED = [
    2.11013815985,
    0.452437035418,
    2.119491680192,
    6.637846988425,
    1.650904562378,
    1.382047286831,
    0.119791219226,
    10.0,
]


def reference_scores() -> list[float]:
    if not HAS_JAVA:
        return RECORDED
    scores = java_cider([p for p, _ in CAPTIONS], [r for _, r in CAPTIONS])
    assert scores == pytest.approx(RECORDED, abs=1e-9)  # the recorded values stay true
    return scores


def test_raw_captions_score_as_pycocoevalcap() -> None:
    predictions, references = [p for p, _ in CAPTIONS], [r for _, r in CAPTIONS]
    expected = reference_scores()
    per_sample = cider_per_sample(predictions, references)
    assert per_sample == pytest.approx(expected, abs=1e-9)
    assert cider(predictions, references) == pytest.approx(np.mean(expected), abs=1e-9)


def test_tokenized_scores_equal_cider_scorer_on_random_sets() -> None:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(60)]

    def sentence() -> str:  # small vocabularies repeat n-grams; 0 or 1 word sentences included
        return " ".join(rng.choice(vocab[: rng.choice([4, 60])]) for _ in range(rng.randint(0, 12)))

    for n_images in (2, 3, 40, 200):
        predictions = [sentence() for _ in range(n_images)]
        references = [[sentence() for _ in range(rng.randint(1, 5))] for _ in range(n_images)]
        scorer = CiderScorer(n=4, sigma=6.0)
        for p, refs in zip(predictions, references, strict=True):
            scorer += (p, refs)
        mean, scores = scorer.compute_score()
        ours = cider_scores_tokenized(predictions, references)
        np.testing.assert_allclose(ours, scores, rtol=0, atol=1e-9)
        assert ours.mean() == pytest.approx(mean, abs=1e-9)


def test_one_image_scores_zero_so_score_the_whole_set_once() -> None:
    assert cider(["a dog on a couch"], [["a dog on a couch"]]) == 0.0


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        (["a", "b"], [["a"]], "one list of references per prediction"),
        (["a", "b"], [["a"], []], "no reference text"),
        (["a"], ["a"], "list of lists of strings"),
    ],
)
def test_bad_inputs_say_what_to_fix(predictions, references, message) -> None:
    with pytest.raises(ValueError, match=message):
        cider(predictions, references)
