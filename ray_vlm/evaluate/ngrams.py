"""Sentences -> sparse n-gram count vectors, vectorised with numpy.

``count_ngrams(sentences, n)`` splits each (already tokenised) sentence on whitespace and returns
an ``NgramCounts`` holding one row per distinct ``(sentence, n-gram)`` pair:
``sentence`` (int64, index into ``sentences``), ``gram`` (int64, an id shared by equal n-grams
across all sentences, unique across orders), ``order`` (int64, 0 for unigrams ... n-1) and
``count`` (float64, occurrences of the n-gram in the sentence); plus ``lengths`` (int64 per
sentence: number of words) and ``n_grams`` (number of distinct n-gram ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np


@dataclass(frozen=True)
class NgramCounts:
    sentence: np.ndarray
    gram: np.ndarray
    order: np.ndarray
    count: np.ndarray
    lengths: np.ndarray
    n_grams: int


def _word_ids(sentences: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    split = [s.split() for s in sentences]
    words = list(chain.from_iterable(split))
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    ids = np.fromiter(map(vocab.__getitem__, words), np.int64, len(words))
    return ids, np.fromiter(map(len, split), np.int64, len(split)), len(vocab)


def unique_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of an int64 array and how often each occurs (sort-based; numpy's
    hash-based ``np.unique`` is several times slower on these arrays)."""
    ordered = np.sort(keys)
    is_start = np.empty(len(ordered), bool)
    is_start[:1] = True
    is_start[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(is_start)
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def count_ngrams(sentences: list[str], n: int = 4) -> NgramCounts:
    words, lengths, vocab_size = _word_ids(sentences)
    sentence_of = np.repeat(np.arange(len(sentences), dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    left = np.repeat(lengths, lengths) - (np.arange(len(words)) - np.repeat(starts, lengths))
    # ``left[i]``: words from position i to the end of its sentence (n-grams of order k need k).
    parts, offset = [], 0
    prev = words
    for k in range(1, n + 1):
        valid = np.flatnonzero(left >= k)
        if k == 1:
            ids = words
        else:
            # An order-k n-gram is an (order k-1 n-gram, next word) pair: number the pairs.
            pair = prev[valid] * vocab_size + words[valid + k - 1]
            _, ids_valid = np.unique(pair, return_inverse=True)
            ids = np.full(len(words), -1, np.int64)
            ids[valid] = ids_valid
        n_ids = int(ids[valid].max()) + 1 if len(valid) else 0
        key = sentence_of[valid] * max(n_ids, 1) + ids[valid]
        uniq, counts = unique_counts(key)
        parts.append((uniq // max(n_ids, 1), uniq % max(n_ids, 1) + offset, k - 1, counts))
        offset += n_ids
        prev = ids
    return NgramCounts(
        sentence=np.concatenate([p[0] for p in parts]),
        gram=np.concatenate([p[1] for p in parts]),
        order=np.concatenate([np.full(len(p[0]), p[2], np.int64) for p in parts]),
        count=np.concatenate([p[3] for p in parts]).astype(np.float64),
        lengths=lengths,
        n_grams=offset,
    )
