"""The nine family stand-ins are faithful where a fine-tune depends on it: the chat template renders
turn by turn (the prompt is a prefix of the conversation) and ends the answer on a token that the
generation config lists as an end token. (That each one's batch is its processor's own, trains and
generates: ``tests/preprocess/test_contract.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoProcessor, GenerationConfig

from ray_vlm.demo.family_standins import FAMILY_BUILDERS

QUESTION, ANSWER = "What colour is the shape?", "red"


def _messages(answer: bool) -> list[dict]:
    user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}
    reply = {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]}
    return [user, reply] if answer else [user]


@pytest.mark.parametrize("family", list(FAMILY_BUILDERS))
def test_the_template_ends_the_answer_on_an_end_token(family_assets: Path, family: str) -> None:
    path = family_assets / "models" / family
    processor = AutoProcessor.from_pretrained(path)
    render = processor.apply_chat_template
    prompt = render(_messages(False), add_generation_prompt=True, tokenize=False)
    full = render(_messages(True), tokenize=False)
    assert full.startswith(prompt)
    ends = GenerationConfig.from_pretrained(path).eos_token_id
    ends = processor.tokenizer.convert_ids_to_tokens(ends if isinstance(ends, list) else [ends])
    assert full[len(prompt) :].lstrip().removeprefix(ANSWER).startswith(tuple(ends))
