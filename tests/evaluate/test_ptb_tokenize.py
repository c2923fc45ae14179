"""Pure-Python PTB tokenisation == pycocoevalcap's PTBTokenizer (Stanford CoreNLP 3.4.1 + filter)."""

from __future__ import annotations

import random

import pytest

from ray_vlm.evaluate.ptb_tokenize import ptb_tokenize
from tests.evaluate.helpers import HAS_JAVA, java_tokenize

# (text, what the Java tokenizer + pycocoevalcap's punctuation filter give; recorded on this
# machine with pycocoevalcap 1.2 and Java 17, re-checked against Java whenever it is on PATH).
TRICKY = [
    ("A man (wearing a hat) rides a horse.", "a man -lrb- wearing a hat -rrb- rides a horse"),
    (
        "\"Hello,\" she said. 'Quoted' text `back` ``double''",
        "hello she said quoted text back double",
    ),
    (
        "I don't know, it's John's dog; can't won't cannot",
        "i do n't know it 's john 's dog ca n't wo n't can not",
    ),
    (
        "They're here, we've seen it, you'll see, I'm sure, he'd go.",
        "they 're here we 've seen it you 'll see i 'm sure he 'd go",
    ),
    (
        "Numbers: 1,000 and 3.14 and 1.5m, $5.00 and 50% off at 10:30 a.m.",
        "numbers 1,000 and 3.14 and 1.5 m $ 5.00 and 50 % off at 10:30 a.m.",
    ),
    ("Wait... what?! Really?? yes!!! . . . ok…", "wait what ?! really ?? yes !!! ok"),
    (
        "A well-known self-driving car -- fast - slow — very – quick.",
        "a well-known self-driving car fast slow very quick",
    ),
    (
        "{braces} [brackets] <angle> a/b and/or a*b a&b AT&T a+b a=b #tag @user x_y",
        "-lcb- braces -rcb- -lsb- brackets -rsb- <angle> a/b and/or a * b a & b at&t a + b a = b "
        "#tag @user x_y",
    ),
    (
        "U.S. flag, e.g. this, i.e. that, Mr. Smith and Dr. Jones on Main St. etc.",
        "u.s. flag e.g. this i.e. that mr. smith and dr. jones on main st. etc.",
    ),
    ("A DOG sits ON a Couch.", "a dog sits on a couch"),
    (
        "It's 5 o'clock. Rock 'n' roll in the '90s, the 1990's, dogs' toys.",
        "it 's 5 o'clock rock 'n' roll in the '90s the 1990 's dogs toys",
    ),
    (
        "café naïve “smart quotes” ‘single’ 😀 emoji ° × ★",
        "café naïve smart quotes single emoji ° × ★",
    ),
    (
        "the letter a. plan b. No. 5 and fig. 3 approx. 10",
        "the letter a. plan b. no. 5 and fig. 3 approx 10",
    ),
    ("gonna wanna gotta gimme lemme 'tis 'twas", "gon na wan na got ta gim me lem me 't is 't was"),
]


@pytest.mark.parametrize(("text", "expected"), TRICKY, ids=[t[:30] for t, _ in TRICKY])
def test_tricky_strings_match_the_recorded_java_output(text: str, expected: str) -> None:
    assert ptb_tokenize(text) == expected


WORDS = ["a", "the", "man", "dog", "two", "red", "on", "of", "Table", "bench", "it's", "don't"]
WORDS += ["can't", "I'm", "they're", "dogs'", "cannot", "3.5", "1,000", "$5", "50%", "3D"]
WORDS += ["T-shirt", "well-known", "U.S.", "e.g.", "Mr.", "St.", "a.m.", "o'clock", "'90s", "café"]
BEFORE = ["(", '"', "'", "“", "‘", "[", "`"]
AFTER = [",", ".", "!", "?", ";", ":", ")", '"', "'", "”", "’", "...", "?!", ".)", "'s"]
BETWEEN = [" - ", " -- ", " — ", " / ", " & ", " ... ", " . . . "]


def random_caption(rng: random.Random) -> str:
    text = ""
    for i in range(rng.randint(1, 12)):
        word = rng.choice(WORDS)
        word = word.capitalize() if rng.random() < 0.15 else word
        word = rng.choice(BEFORE) + word if rng.random() < 0.12 else word
        word = word + rng.choice(AFTER) if rng.random() < 0.2 else word
        text += (rng.choice(BETWEEN) if i and rng.random() < 0.05 else " ") + word
    return text.strip()


@pytest.mark.skipif(not HAS_JAVA, reason="java not on PATH; the recorded outputs are checked")
def test_recorded_outputs_and_random_captions_match_java_now() -> None:
    rng = random.Random(0)
    captions = [random_caption(rng) for _ in range(1000)]
    texts = [t for t, _ in TRICKY] + captions
    assert java_tokenize(texts) == [expected for _, expected in TRICKY] + [
        ptb_tokenize(c) for c in captions
    ]
