"""Batched generation: images + question -> answer text, for any supported VLM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import BatchFeature, PreTrainedModel, ProcessorMixin

from ray_vlm.preprocess import question_turns, render_prompt
from ray_vlm.records import Turn

Prompt = str | Sequence[Turn]
"""A single question, or a conversation of turns ending with the user's question."""


@dataclass(frozen=True)
class SamplingParams:
    """``temperature == 0`` is greedy decoding; ``stop`` strings cut the returned text."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) or "length"


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cuts = [text.index(s) for s in stop if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def end_tokens(model: PreTrainedModel, tokenizer: Any) -> list[int]:
    """Every token that ends an answer: the generation config's ``eos_token_id`` (an id or a list:
    Gemma-3-it ends on ``<eos>`` and ``<end_of_turn>``), else the tokenizer's end token."""
    ends = model.generation_config.eos_token_id
    if ends is None:
        ends = tokenizer.eos_token_id
    return [int(e) for e in (ends if isinstance(ends, list | tuple) else [ends]) if e is not None]


def _turns(prompt: Prompt) -> list[Turn]:
    return question_turns(prompt) if isinstance(prompt, str) else list(prompt)


def encode_prompts(
    processor: ProcessorMixin, requests: Sequence[tuple[Sequence[Image.Image], Prompt]]
) -> BatchFeature:
    """Model inputs of ``(images, question or turns)`` requests: one left-padded batch
    (``attention_mask.sum(1)`` is each prompt's length). ``ValueError``: the processor refuses
    them (e.g. a model that needs an image got none)."""
    processor.tokenizer.padding_side = "left"
    texts = [render_prompt(processor, _turns(p), len(imgs)) for imgs, p in requests]
    images = [list(imgs) for imgs, _ in requests]
    return processor(
        images=images if any(images) else None, text=texts, return_tensors="pt", padding=True
    )


def generate(
    model: PreTrainedModel,
    processor: ProcessorMixin,
    requests: Sequence[tuple[Sequence[Image.Image], Prompt]],
    params: SamplingParams = SamplingParams(),
) -> list[Generation]:
    """Answer each ``(images, question or turns)`` request; one left-padded batch through
    ``model.generate``. Returns one ``Generation`` per request, in order.
    """
    return generate_encoded(model, processor, encode_prompts(processor, requests), params)


@torch.inference_mode()
def generate_encoded(
    model: PreTrainedModel,
    processor: ProcessorMixin,
    inputs: BatchFeature,
    params: SamplingParams = SamplingParams(),
) -> list[Generation]:
    """``generate`` on inputs ``encode_prompts`` made (callers that already encoded them to
    check prompt lengths reuse them)."""
    tokenizer = processor.tokenizer
    inputs = inputs.to(model.device)
    sampling = (
        {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
        if params.temperature > 0
        else {"do_sample": False}
    )
    ends = end_tokens(model, tokenizer)
    out = model.generate(
        **inputs,
        max_new_tokens=params.max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=ends or None,
        **sampling,
    )
    prompt_len = inputs["input_ids"].shape[1]
    results = []
    for row, mask in zip(out[:, prompt_len:], inputs["attention_mask"], strict=True):
        ended = torch.isin(row, torch.tensor(ends, device=row.device)).nonzero()
        n = int(ended[0]) + 1 if len(ended) else len(row)
        text, stopped = _cut_at_stop(
            tokenizer.decode(row[:n], skip_special_tokens=True), params.stop
        )
        finish = "stop" if len(ended) or stopped else "length"
        results.append(Generation(text.strip(), int(mask.sum()), n, finish))
    return results
