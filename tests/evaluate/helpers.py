"""pycocoevalcap's Java-backed reference, when Java is on PATH (it is on the project machines)."""

from __future__ import annotations

import shutil

HAS_JAVA = shutil.which("java") is not None


def java_tokenize(texts: list[str]) -> list[str]:
    """pycocoevalcap's own PTBTokenizer (runs the bundled Stanford CoreNLP 3.4.1 jar).

    pycocoevalcap writes one caption per line, so every caption but the batch's last is followed
    by a newline; a sentinel last caption gives each text that same context.
    """
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    captions = {i: [{"caption": t}] for i, t in enumerate([*texts, "end"])}
    out = PTBTokenizer().tokenize(captions)
    return [out[i][0] for i in range(len(texts))]


def java_cider(predictions: list[str], references: list[list[str]]) -> list[float]:
    """Per-image CIDEr-D exactly as pycocoevalcap computes it: PTBTokenizer then Cider."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize(
        {i: [{"caption": r} for r in refs] for i, refs in enumerate(references)}
    )
    res = tokenizer.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
    return Cider().compute_score(gts, res)[1].tolist()
