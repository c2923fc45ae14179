"""VQA answer normalisation, as the official VQA evaluation and lmms-eval apply it.

``normalize_answer("Two dogs!") -> "2 dogs"``. The steps are those of lmms-eval's
``EvalAIAnswerProcessor`` (itself the official GT-Vision-Lab ``vqaEval.py`` rules): lower-case,
drop ``,`` and ``?``, split off ``'s``; then ``processPunctuation`` (a punctuation mark next to a
space, or anywhere in a text holding a digit-comma-digit, is removed, else replaced by a space;
periods not next to a digit are removed); then ``processDigitArticle`` (number words zero..ten
-> digits, ``a`` / ``an`` / ``the`` dropped, contractions written without an apostrophe get it
back). Two quirks of the official code are kept so numbers match it: the period regex is a
negative look-*ahead* for the text ``<=`` followed by a digit (a typo of a look-behind), and it
is applied with ``count=re.UNICODE`` (at most 32 replacements).
"""

from __future__ import annotations

import re

_NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})
_PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<"]
_PUNCTUATION += ["@", "`", ",", "?", "!"]
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(?<=\d)(\,)+(?=\d)")

# The official contractions map: the apostrophe-less spelling -> the written form. Keys with a
# capital letter (``Im``) can never match a lower-cased word; kept as the official code has them.
_CONTRACTION_PAIRS = (
    "aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't "
    "couldn'tve=couldn't've couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't "
    "hadnt=hadn't hadnt've=hadn't've hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd "
    "hed've=he'd've he'dve=he'd've hes=he's howd=how'd howll=how'll hows=how's Id've=I'd've "
    "I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd itd've=it'd've it'dve=it'd've "
    "itll=it'll let's=let's maam=ma'am mightnt=mightn't mightnt've=mightn't've "
    "mightn'tve=mightn't've mightve=might've mustnt=mustn't mustve=must've neednt=needn't "
    "notve=not've oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at "
    "'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've she's=she's "
    "shouldve=should've shouldnt=shouldn't shouldnt've=shouldn't've "
    "shouldn'tve=shouldn't've somebody'd=somebodyd somebodyd've=somebody'd've "
    "somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's "
    "someoned=someone'd someoned've=someone'd've someone'dve=someone'd've "
    "someonell=someone'll someones=someone's somethingd=something'd "
    "somethingd've=something'd've something'dve=something'd've somethingll=something'll "
    "thats=that's thered=there'd thered've=there'd've there'dve=there'd've "
    "therere=there're theres=there's theyd=they'd theyd've=they'd've they'dve=they'd've "
    "theyll=they'll theyre=they're theyve=they've twas='twas wasnt=wasn't wed've=we'd've "
    "we'dve=we'd've weve=we've werent=weren't whatll=what'll whatre=what're whats=what's "
    "whatve=what've whens=when's whered=where'd wheres=where's whereve=where've whod=who'd "
    "whod've=who'd've who'dve=who'd've wholl=who'll whos=who's whove=who've whyll=why'll "
    "whyre=why're whys=why's wont=won't wouldve=would've wouldnt=wouldn't "
    "wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll "
    "y'allll=y'all'll yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've "
    "youd=you'd youd've=you'd've you'dve=you'd've youll=you'll youre=you're youve=you've"
)
_CONTRACTIONS = dict(pair.split("=") for pair in _CONTRACTION_PAIRS.split())


def process_punctuation(text: str) -> str:
    out = text
    has_digit_comma = _COMMA_STRIP.search(text) is not None
    for p in _PUNCTUATION:
        if p + " " in text or " " + p in text or has_digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=int(re.UNICODE))  # the official code's quirk: 32


def process_digit_article(text: str) -> str:
    words = [_NUMBERS.get(w, w) for w in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def normalize_answer(text: str) -> str:
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))
