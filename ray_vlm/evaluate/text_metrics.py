"""BLEU-4 and ROUGE-L of captions, from well-kept libraries, on PTB-tokenised text.

``bleu4(predictions, references) -> float``: corpus BLEU-4 (uniform 1..4-gram weights, closest
reference length for the brevity penalty, no smoothing) by ``nltk.translate.bleu_score.
corpus_bleu`` on the same PTB tokens as CIDEr. It equals coco-caption's ``Bleu(4)`` (to ~1e-11)
unless some prediction has fewer than 4 tokens: nltk then counts its empty n-gram orders as
0 matches out of 1, coco-caption as 0 out of 0 (checked in tests/evaluate/test_text_metrics.py).
When some order has no match at all the score is ~0 (nltk puts the smallest float in place of
the zero precision).

``rouge_l(predictions, references) -> float``: mean over predictions of Google's ``rouge-score``
ROUGE-L F1 against the best-matching reference (``RougeScorer.score_multi``; the ``rouge`` metric
of Hugging Face ``evaluate`` wraps the same library). Note: coco-caption's ROUGE-L is a different
variant (F with beta 1.2 from the best precision and best recall), so it differs in value.
"""

from __future__ import annotations

import warnings

from nltk.translate.bleu_score import corpus_bleu
from rouge_score.rouge_scorer import RougeScorer

from ray_vlm.evaluate.pairs import check_pairs
from ray_vlm.evaluate.ptb_tokenize import ptb_tokenize


class _WhitespaceTokenizer:
    """The text is PTB-tokenised already; rouge-score's default would drop ``-lrb-`` etc."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


def _tokenized(
    predictions: list[str], references: list[list[str]]
) -> tuple[list[str], list[list[str]]]:
    check_pairs(predictions, references)
    return [ptb_tokenize(p) for p in predictions], [
        [ptb_tokenize(r) for r in refs] for refs in references
    ]


def bleu4(predictions: list[str], references: list[list[str]]) -> float:
    hyp, refs = _tokenized(predictions, references)
    if not hyp:
        return 0.0
    with warnings.catch_warnings():
        # nltk warns when an n-gram order has no match; the score is then 0, as it should be.
        warnings.simplefilter("ignore", UserWarning)
        return float(
            corpus_bleu([[r.split() for r in rs] for rs in refs], [h.split() for h in hyp])
        )


def rouge_l_per_sample(predictions: list[str], references: list[list[str]]) -> list[float]:
    hyp, refs = _tokenized(predictions, references)
    scorer = RougeScorer(["rougeL"], tokenizer=_WhitespaceTokenizer())
    return [scorer.score_multi(rs, h)["rougeL"].fmeasure for h, rs in zip(hyp, refs, strict=True)]


def rouge_l(predictions: list[str], references: list[list[str]]) -> float:
    scores = rouge_l_per_sample(predictions, references)
    return sum(scores) / len(scores) if scores else 0.0
