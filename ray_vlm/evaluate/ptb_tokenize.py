"""PTB-style tokenisation equal to pycocoevalcap's ``PTBTokenizer``, in pure Python (no Java).

pycocoevalcap runs Stanford CoreNLP 3.4.1's ``PTBTokenizer -preserveLines -lowerCase`` on every
caption and then drops the tokens in ``PUNCTUATIONS``. ``ptb_tokenize(text) -> str`` returns the
same space-joined, lower-cased tokens. Like the Java lexer it scans left to right taking the
*longest* match among its rules (ties: the earlier rule), where a rule's trailing context counts
towards the length but is not consumed (``don't`` -> ``do`` + ``n't``). Quirks kept on purpose:
brackets become ``-lrb-`` / ``-lsb-`` / ``-lcb-`` ... and survive (pycocoevalcap filters only the
upper-case forms); ``?!`` and ``!!`` survive (only single ``?`` / ``!`` are dropped); known
abbreviations, single letters and acronyms keep their period (``mr.``, ``a.``, ``u.s.``);
characters outside the Basic Multilingual Plane (emoji) are deleted. The end of the text counts
as a line break, as for every caption but the last in pycocoevalcap's one-caption-per-line file.

Checked against the Java tokenizer (tests/evaluate/test_ptb_tokenize.py): identical on 5,000
random caption-like lines mixing contractions, quotes, brackets, abbreviations, numbers, dashes
and ellipses. Known gaps, all rare in captions: text typed as ``-LRB-``, phone numbers, fractions
written with a space (``5 1/2``), and URLs or e-mail addresses glued to other words.
"""

from __future__ import annotations

import re
from collections.abc import Callable

PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--"]
    + ["...", ";"]
)
"""pycocoevalcap's list, verbatim (compared after lower-casing, so ``-lrb-`` is kept)."""


# Words whose trailing period stays attached (probed on the 3.4.1 jar); ``[a-z]``: single letters.
_ABBREVIATIONS = (
    "[a-z]|adm|al|ala|alex|apr|ariz|assn|attys?|aug|ave|bancorp|bhd|blvd|brig|bros|calif|capt|cf|"
    "cie|cmdr|co|col|colo|comdr|conn|corp|cos|cpl|dak|dec|dept|det|drs?|elec|esq|est|etc|ext|feb|"
    "fla|fri|ft|ga|gen|govs?|hon|inc|ind|intl|invt|jan|jos|jr|jul|jun|kans?|ky|lieut|lt|ltd|maj|"
    "mar|md|messrs|mfg|mich|minn|mo|mon|mont|mrs?|ms|mt|mtg|natl|neb|nev|nov|oct|okla|penn|pfc|ph|"
    "plc|pres|profs?|ptys?|pvt|rd|reps?|rev|sens?|sept?|seq|sgt|spc|sq|sr|st|ste|supts?|sys|tel|"
    "tenn|thu|thurs|treas|tues?|univ|va|vs|vt|wed|wisc?|wm|wyo"
)
# Only with a capital first letter: "Mass." keeps its period, "mass." does not.
_CAPITALISED_ABBREVIATIONS = "A(?i:rk)|I(?i:ll)|L(?i:a)|M(?i:ass|iss)|O(?i:re)|P(?i:a)|W(?i:ash)"
_ABBREVIATIONS_BEFORE_NUMBER = "art|figs?|nos?|op|pp|prop"
_SPLIT_WORDS = ["(?P<tok>can)not", "(?P<tok>gon)na", "(?P<tok>got)ta", "(?P<tok>wan)na"]
_SPLIT_WORDS += ["(?P<tok>gim)me", "(?P<tok>lem)me", "(?P<tok>'t)is", "(?P<tok>'t)was"]
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_CURRENCY = {"¢": "cents", "£": "#", "€": "$", "\u20a0": "$", "¤": "$"}

L = r"[^\W\d_]"  # a letter
A = r"[^\W_]"  # a letter or digit
APOS = "['\u2019\u0092]"
ACRO = rf"{L}(?:\.{L})+"
THING = rf"(?:[dol]{APOS}{A})?{A}+(?:[-_\u2010\u2011](?:[dol]{APOS}{A})?{A}+)*"
HTHING = rf"[a-z0-9][a-z0-9.,]*(?:-(?:[a-z0-9]+|{ACRO}\.))+"
NUMBER = r"[-+]?(?:\d*(?:[.:,]\d+)+|\d+)"
NT = "n['\u2019\u0092\u2018]t"

Rule = tuple[re.Pattern[str], Callable[[str, re.Match[str]], list[str]]]
"""``(pattern, handler)``: a named group ``tok`` marks the consumed part when the rule has
trailing context (it counts towards the match length but is lexed again); else the whole match."""


def _keep(tok: str, _: re.Match[str]) -> list[str]:
    return [tok]


def _drop(_: str, __: re.Match[str]) -> list[str]:
    return []


def _as(token: str) -> Callable[[str, re.Match[str]], list[str]]:
    return lambda _, __: [token]


def _straight_quote(tok: str, _: re.Match[str]) -> list[str]:
    return [re.sub("[\u2019\u0092\u2018]", "'", tok)]


_LATEX_QUOTES = str.maketrans(
    {"\u2018": "`", "\u201b": "`", "\u2039": "`", "\u2019": "'", "\u203a": "'"}
    | {"\u201c": "``", "\u00ab": "``", "\u201d": "''", "\u00bb": "''"}
)


def _latex_quotes(tok: str, _: re.Match[str]) -> list[str]:
    """Curly quotes -> LaTeX quotes; two in a row make one token that may survive the filter."""
    return [tok.translate(_LATEX_QUOTES)]


def _c(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_RULES: list[Rule] = [(_c(word), _keep) for word in _SPLIT_WORDS]  # cannot -> can not
_RULES += [
    (_c(r"</?[A-Za-z!][^>]*>"), _keep),  # SGML tag
    (_c(r"https?://[^\s\"<>|()]+[^\s\"<>|.!?(){},-]"), _keep),
    (_c(r"[a-z0-9][\w.+-]*@[a-z0-9](?:[\w.-]*[a-z0-9])?"), _keep),  # e-mail
    (_c(r"@[a-z_][a-z0-9_]*|#[a-z]+"), _keep),  # @mention, #hashtag
    (_c(r"www\.(?:[^\s\"<>|.!?(){},]+\.)+[a-z]{2,4}(?:/[^\s\"<>|()]*[^\s\"<>|.!?(){},-])?"), _keep),
    (_c("[\u2013\u2014\u2015\u0096\u0097]"), _as("--")),
    (_c(r"-+"), lambda tok, _: ["--"] if len(tok) in (3, 4) else [tok]),
    (_c(r"\.{3,5}|(?:\.[ \u00a0]){2,4}\.|[\u2026\u0085]"), _as("...")),
    (_c(rf"(?P<tok>{L}+){APOS}(?:s|m|d|re|ve|ll)(?![a-z])"), _keep),  # john|'s, i|'m
    (_c(rf"(?P<tok>[A-Za-z]*[A-MO-Za-mo-z]){NT}"), _keep),  # do|n't, ca|n't
    (_c(NT), _straight_quote),
    (_c(rf"(?P<tok>{APOS}(?:s|m|d|re|ve|ll))(?:[^a-z]|$)"), _straight_quote),
    (_c(rf"{APOS}n{APOS}?|{APOS}em|{APOS}[2-9]0s|{APOS}till?|{APOS}cause"), _keep),
    (_c(rf"[A-HJ-XZn]{APOS}{L}{{2}}{L}*", 0), _keep),  # O'Neil (case-sensitive, as in Java)
    (_c(rf"{L}+[aeiouyAEIOUY]{APOS}[aeiouA-Z]{L}*", 0), _keep),
    (_c(rf"(?P<tok>y{APOS}){L}"), _keep),  # y'all -> y' all
    (_c(NUMBER), _keep),
    (_c(rf"(?P<tok>{THING}\.)[,;:]"), _keep),
    (_c(THING), _keep),
    (_c(rf"(?P<tok>{HTHING}\.)[,;:]"), _keep),
    (_c(HTHING), _keep),
    (_c(r"[a-z0-9]+(?:-[a-z]+){0,2}(?:\\?/[a-z0-9]+(?:-[a-z]+){0,2}){1,2}"), _keep),
    (_c(r"[A-Z]+(?:[+&][A-Z]+)+", 0), _keep),  # AT&T (case-sensitive, as in Java)
    (_c(rf"{ACRO}\."), _keep),
    (_c(rf"{L}{A}*(?:\.{L}{A}*)+"), _keep),  # www.x.com, mr.blue
    (_c(rf"(?P<tok>{ACRO})(?:\s|$)"), _keep),
    (_c(rf"(?:{_ABBREVIATIONS})\."), _keep),
    (_c(rf"(?:{_CAPITALISED_ABBREVIATIONS})\.", 0), _keep),
    (_c(rf"(?P<tok>(?:{_ABBREVIATIONS_BEFORE_NUMBER})\.)\s+\d"), _keep),
    (_c(r"(?P<tok>'\d\d)(?:\s|$)"), _keep),
    (_c(r"[A-Z]*\$|#", 0), _keep),
    (_c("[¢£€¤\u20a0]"), lambda tok, _: [_CURRENCY[tok]]),
    (_c(r"[?!]+|@+|#+|_+|\*+"), _keep),
    (_c(r"[()\[\]{}]"), lambda tok, _: [_BRACKETS[tok]]),
    (_c(r"(?P<tok>')[A-Za-z][^\s]", 0), _drop),  # opening single quote
    (_c(rf"{APOS}(?:s|m|d|re|ve|ll)"), _straight_quote),
    (_c("''|[`\u2018\u2019\u201a-\u201f\u2039\u203a\u00ab\u00bb]{1,2}"), _latex_quotes),
    (_c("[\"']"), _drop),  # a straight quote is `` or '' (or ` or '), all dropped
    (_c(r"\s+"), _drop),
    (_c("[\U00010000-\U0010ffff]"), _drop),  # outside the BMP: Java sees surrogates, drops them
    (_c(r"."), _keep),  # any other symbol is a token of its own
]
_SPACES = re.compile(r"\s+")
_SIMPLE_WORD = re.compile(r"([A-Za-z0-9]+)([,.!?;:]?)(?=\s|$)")
_PERIOD_KEEPER = re.compile(
    "|".join([_ABBREVIATIONS, _ABBREVIATIONS_BEFORE_NUMBER, _CAPITALISED_ABBREVIATIONS.lower()]),
    re.IGNORECASE,
)
_SPLIT_WORD = re.compile("|".join(_SPLIT_WORDS).replace("?P<tok>", ""), re.IGNORECASE)


def _next_token(text: str, pos: int) -> tuple[list[str], int]:
    """The tokens of the longest rule match at ``pos`` and the position after what it consumed."""
    # Fast paths, equal to the rules below: spaces; a plain word, or one ending a clause.
    if m := _SPACES.match(text, pos):
        return [], m.end()
    if (m := _SIMPLE_WORD.match(text, pos)) and not _SPLIT_WORD.fullmatch(m.group(1)):
        if not m.group(2):
            return [m.group(1)], m.end()
        if m.group(2) != "." or not _PERIOD_KEEPER.fullmatch(m.group(1)):
            return [m.group(1), m.group(2)], m.end()
    best, best_handler = None, _keep
    for pattern, handler in _RULES:
        m = pattern.match(text, pos)
        if m and (best is None or m.end() > best.end()):
            best, best_handler = m, handler
    assert best is not None  # the last rule matches any character
    consumed = "tok" if "tok" in best.re.groupindex else 0
    return best_handler(best.group(consumed), best), best.end(consumed)


def ptb_tokenize(text: str) -> str:
    """``"A man (wearing a hat) rides."`` -> ``"a man -lrb- wearing a hat -rrb- rides"``."""
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        new, pos = _next_token(text, pos)
        tokens += new
    return " ".join(t for t in (t.lower() for t in tokens) if t not in PUNCTUATIONS)
