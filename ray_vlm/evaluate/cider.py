"""CIDEr-D exactly as pycocoevalcap's ``Cider`` computes it, vectorised.

``cider(predictions, references) -> float``: ``predictions[i]`` is the model's text for image i,
``references[i]`` its one or more human texts (raw; PTB-tokenised here as pycocoevalcap does).
``cider_per_sample`` returns the per-image scores (the corpus score is their mean) and
``cider_scores_tokenized`` works on already tokenised text (what ``CiderScorer`` takes).

The definition (tylin/coco-caption ``cider_scorer.py``): n-grams of order 1..4; document
frequency ``df`` = number of images whose references contain the n-gram, over the evaluated set
only; weight = count * (log(#images) - log(max(1, df))); per order, the clipped cosine
sum(min(w_hyp, w_ref) * w_ref) / (|hyp| * |ref|) times exp(-delta^2 / (2 * 6^2)), where delta is
the difference of the two sentences' *bigram* counts (pycocoevalcap's length); mean over orders,
mean over references, times 10. A one-image set scores 0 (every weight is 0), so score the whole
gathered set at once, never per shard.
"""

from __future__ import annotations

import numpy as np

from ray_vlm.evaluate.ngrams import count_ngrams, unique_counts
from ray_vlm.evaluate.pairs import check_pairs
from ray_vlm.evaluate.ptb_tokenize import ptb_tokenize

N = 4
SIGMA = 6.0


def cider_scores_tokenized(predictions: list[str], references: list[list[str]]) -> np.ndarray:
    """Per-image CIDEr-D (float64, shape ``(len(predictions),)``) of tokenised text."""
    check_pairs(predictions, references)
    n_images = len(predictions)
    if n_images == 0:
        return np.zeros(0)
    n_refs = np.array([len(r) for r in references], np.int64)
    image_of_ref = np.repeat(np.arange(n_images), n_refs)
    # Sentence s < n_images is prediction s; sentence n_images + j is reference j (flattened).
    grams = count_ngrams(predictions + [r for refs in references for r in refs], N)
    is_ref = grams.sentence >= n_images
    image = np.where(is_ref, image_of_ref[np.maximum(grams.sentence - n_images, 0)], grams.sentence)

    key = image * grams.n_grams + grams.gram  # (image, n-gram)
    image_grams, _ = unique_counts(key[is_ref])
    df = np.bincount(image_grams % grams.n_grams, minlength=grams.n_grams)
    weight = grams.count * (np.log(float(n_images)) - np.log(np.maximum(1.0, df[grams.gram])))
    n_sentences = len(grams.lengths)
    norm = np.sqrt(
        np.bincount(grams.sentence * N + grams.order, weight**2, minlength=n_sentences * N)
    ).reshape(n_sentences, N)
    bigrams = np.maximum(grams.lengths - 1, 0).astype(np.float64)

    # For every reference n-gram, the weight of the same n-gram in its image's prediction (0 if
    # absent). An n-gram missing on either side adds min(w_hyp, w_ref) * w_ref = 0 (weights >= 0).
    by_key = np.argsort(key[~is_ref])
    hyp_key, hyp_weight = key[~is_ref][by_key], weight[~is_ref][by_key]
    ref_key, w_ref = key[is_ref], weight[is_ref]
    w_hyp = np.zeros_like(w_ref)
    if len(hyp_key):
        at = np.minimum(np.searchsorted(hyp_key, ref_key), len(hyp_key) - 1)
        w_hyp = np.where(hyp_key[at] == ref_key, hyp_weight[at], 0.0)
    pair = grams.sentence[is_ref] - n_images  # one (image, reference) pair per reference
    slot = pair * N + grams.order[is_ref]
    contribution = np.minimum(w_hyp, w_ref) * w_ref
    clipped = np.bincount(slot, contribution, minlength=len(image_of_ref) * N)
    clipped = clipped.astype(np.float64).reshape(-1, N)  # (bincount of nothing is int64)

    norm_ref, norm_hyp = norm[n_images:], norm[image_of_ref]
    denominator = norm_hyp * norm_ref
    cosine = np.divide(clipped, denominator, out=clipped.copy(), where=denominator != 0)
    delta = bigrams[image_of_ref] - bigrams[n_images:]
    penalised = cosine * np.exp(-(delta**2) / (2 * SIGMA**2))[:, None]
    per_ref = penalised.mean(axis=1)
    return np.bincount(image_of_ref, per_ref, minlength=n_images) / n_refs * 10.0


def cider_per_sample(predictions: list[str], references: list[list[str]]) -> list[float]:
    """Per-image CIDEr-D of raw text (PTB-tokenised first); their mean is ``cider(...)``."""
    check_pairs(predictions, references)
    tokenized = [ptb_tokenize(p) for p in predictions]
    refs = [[ptb_tokenize(r) for r in rs] for rs in references]
    return cider_scores_tokenized(tokenized, refs).tolist()


def cider(predictions: list[str], references: list[list[str]]) -> float:
    """Corpus CIDEr-D of raw text, on pycocoevalcap's scale (x10)."""
    scores = cider_per_sample(predictions, references)
    return float(np.mean(scores)) if scores else 0.0
