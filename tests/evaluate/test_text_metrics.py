"""BLEU-4 equals coco-caption's Bleu(4) on the same tokens; ROUGE-L is rouge-score's LCS F1."""

from __future__ import annotations

import pytest
from pycocoevalcap.bleu.bleu import Bleu

from ray_vlm.evaluate import bleu4, ptb_tokenize, rouge_l, rouge_l_per_sample
from tests.evaluate.test_cider import CAPTIONS


def test_bleu4_equals_coco_caption_bleu4() -> None:
    # Predictions of >= 4 tokens: with fewer, nltk and coco-caption count empty orders differently.
    long_enough = [(p, r) for p, r in CAPTIONS if len(ptb_tokenize(p).split()) >= 4]
    assert len(long_enough) == len(CAPTIONS) - 1
    predictions, references = [p for p, _ in long_enough], [r for _, r in long_enough]
    gts = {i: [ptb_tokenize(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [ptb_tokenize(p)] for i, p in enumerate(predictions)}
    coco = Bleu(4).compute_score(gts, res, verbose=0)[0][3]
    assert bleu4(predictions, references) == pytest.approx(coco, abs=1e-9)
    assert bleu4(["A dog on a couch."], [["a dog on a couch"]]) == pytest.approx(1.0)


def test_rouge_l_is_the_best_reference_lcs_f1() -> None:
    predictions = ["the cat sat on the mat", "a b c e"]
    references = [["the cat is on the mat", "dogs"], ["x y", "a c e f"]]
    # LCS "the cat on the mat": 5 of 6 both ways; "a c e": 3 of 4 both ways.
    assert rouge_l_per_sample(predictions, references) == pytest.approx([5 / 6, 3 / 4])
    assert rouge_l(predictions, references) == pytest.approx((5 / 6 + 3 / 4) / 2)
