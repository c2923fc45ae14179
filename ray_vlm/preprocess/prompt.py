"""Turn a record's images and turns into the exact text a model's processor expects.

Two prompt styles, chosen by the processor's type:
- ``chat`` (LLaVA, Perception LM, Qwen-VL, ...): the processor's chat template, images first in the
  first user turn;
- ``prefix_suffix`` (PaliGemma): the processor adds the image tokens and BOS itself; the prompt is
  the first user turn (the prefix) and the answer is the suffix. Multi-turn records use their first
  question and last answer, as PaliGemma has no turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ray_vlm.records import ASSISTANT, USER, Turn

if TYPE_CHECKING:
    from transformers import ProcessorMixin


def prompt_style(processor: ProcessorMixin) -> str:
    """``prefix_suffix`` for PaliGemma-style processors, else ``chat``."""
    # Imported here: the Ray tasks that only read records import this package, and transformers
    # (with torch) would cost each new worker process seconds.
    from transformers import PaliGemmaProcessor

    return "prefix_suffix" if isinstance(processor, PaliGemmaProcessor) else "chat"


def chat_messages(turns: Sequence[Turn], num_images: int) -> list[dict]:
    """Chat-template messages: the images lead the first user turn's content."""
    messages = []
    for i, turn in enumerate(turns):
        content: list[dict] = [{"type": "image"}] * num_images if i == 0 else []
        content = [*content, {"type": "text", "text": turn.text}]
        messages.append({"role": turn.role, "content": content})
    return messages


def render_prompt(processor: ProcessorMixin, turns: Sequence[Turn], num_images: int) -> str:
    """Text for generation: every turn given, then the cue for the assistant's next answer.

    ``turns`` ends with a user turn (the question). For ``prefix_suffix`` processors this is one
    image token per image then the prefix; the processor adds BOS, the image tokens' expansion and
    the newline separator.
    """
    if turns[-1].role != USER:
        raise ValueError("render_prompt needs the conversation to end with a user turn")
    if prompt_style(processor) == "prefix_suffix":
        return processor.image_token * num_images + turns[0].text
    return processor.apply_chat_template(
        chat_messages(turns, num_images), add_generation_prompt=True, tokenize=False
    )


def question_turns(question: str) -> list[Turn]:
    """A single-question conversation."""
    return [Turn(USER, question)]


__all__ = ["ASSISTANT", "chat_messages", "prompt_style", "question_turns", "render_prompt"]
