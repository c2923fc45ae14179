"""Generation stops on every end token the model's generation config names (Gemma-3-it:
``<eos>`` and ``<end_of_turn>``), not only on the tokenizer's ``eos_token``."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ray_vlm.model import SamplingParams, load_model, load_processor
from ray_vlm.model.generation import end_tokens, generate


def test_gemma3_stops_at_the_end_of_its_turn(family_assets: Path) -> None:
    path = str(family_assets / "models/gemma3")
    model, processor = load_model(path).eval(), load_processor(path)
    tokenizer = processor.tokenizer
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert end_tokens(model, tokenizer) == [tokenizer.eos_token_id, end_of_turn]
    # The (random) model made to answer <end_of_turn> first: the answer ends there, empty.
    model.generation_config.sequence_bias = {(end_of_turn,): 100.0}
    image = Image.new("RGB", (64, 64), "red")
    [answer] = generate(model, processor, [([image], "What is it?")], SamplingParams(8))
    assert (answer.completion_tokens, answer.finish_reason, answer.text) == (1, "stop", "")
