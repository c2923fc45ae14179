"""VQA accuracy: every normalisation rule, the leave-one-out formula, VQA-RAD closed/open."""

from __future__ import annotations

import pytest

from ray_vlm.evaluate import (
    normalize_answer,
    vqa_accuracy,
    vqa_accuracy_per_sample,
    vqa_rad_per_sample,
    vqa_rad_scores,
)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Yes!", "yes"),  # lower-case, punctuation
        ("red, white", "red white"),  # commas dropped
        ("t-shirt", "t shirt"),  # punctuation inside a word becomes a space
        ("x - y", "x y"),  # punctuation next to a space is removed
        ("(red)", "red"),
        ("e.g.", "eg"),  # periods not before a digit are removed
        ("3.5", "3.5"),  # a decimal point stays
        ("2.", "2"),
        ("1,000", "1000"),
        ("Two", "2"),  # number words -> digits
        ("ten dogs", "10 dogs"),
        ("eleven", "eleven"),  # only zero..ten (and none) are mapped
        ("none", "0"),
        ("a dog", "dog"),  # articles dropped
        ("The cat", "cat"),
        ("an apple", "apple"),
        ("dont", "don't"),  # contractions get their apostrophe back
        ("isnt", "isn't"),
        ("Im", "im"),  # the official map's capitalised keys never match (kept as official)
        ("man's hat", "man 's hat"),
        ("  yes\tsir\n", "yes sir"),
    ],
)
def test_normalisation_rules(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


def test_leave_one_out_over_ten_answers() -> None:
    others = ["3", "4", "5", "6", "7", "8", "9"]
    answers = [
        ["2", "two", "Two"] + others,  # 3 matches: 3 subsets see 2 (2/3), 7 see 3 (1) -> 0.9
        ["2"] + others + ["3", "3"],  # 1 match: 9 subsets see 1 (1/3), 1 sees 0 -> 0.3
        ["2", "2"] + others + ["3"],  # 2 matches: 2 see 1 (1/3), 8 see 2 (2/3) -> 0.6
        ["2"] * 4 + others[:6],  # 4 matches: every subset sees >= 3 -> 1.0
        others + ["3", "3", "3"],  # no match -> 0.0
    ]
    predictions = ["Two."] * len(answers)
    assert vqa_accuracy_per_sample(predictions, answers) == pytest.approx([0.9, 0.3, 0.6, 1, 0])
    assert vqa_accuracy(predictions, answers) == pytest.approx(2.8 / 5)


def test_one_reference_answer_is_normalised_exact_match() -> None:
    predictions = ["Two.", "two dogs", "The red one", "Yes"]
    answers = [["2"], ["2"], ["red one"], ["no"]]
    assert vqa_accuracy_per_sample(predictions, answers) == [1.0, 0.0, 1.0, 0.0]


def test_vqa_rad_closed_and_open_without_llava_med_bugs() -> None:
    predictions = [
        "Yes, there is an effusion.",  # closed, right
        "No.",  # closed, wrong: still counted
        "The findings are normal.",  # closed "no": "normal" is not "no"; no yes/no said -> wrong
        "left lung",  # open, recall 1
        "right lower lobe",  # open, 2 of 3 answer tokens
        "abnormal mass",  # open, 1 of "mass in left lung" (article dropped) -> 1/4
    ]
    answers = [
        ["yes"],
        ["yes"],
        ["no"],
        ["Left lung"],
        ["left lower lobe"],
        ["mass in the left lung"],
    ]
    kinds = [kind for kind, _ in vqa_rad_per_sample(predictions, answers)]
    assert kinds == ["closed"] * 3 + ["open"] * 3
    scores = vqa_rad_scores(predictions, answers)
    assert scores == {
        "closed_accuracy": pytest.approx(1 / 3),
        "open_recall": pytest.approx((1 + 2 / 3 + 1 / 4) / 3),
        "n_closed": 3,
        "n_open": 3,
    }
    assert vqa_rad_scores(["yes"], [["yes"]])["open_recall"] is None
