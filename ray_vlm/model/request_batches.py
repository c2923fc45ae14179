"""Many independent requests -> a few ``model.generate`` calls, each request answered or refused
on its own.

``encode_checked`` (the processor's work: the part to run while the model is busy with the
previous batch) sorts the requests by prompt length, cuts them into groups of at most
``max_group`` and encodes each group with one processor call. A request the model cannot take
(the processor refuses it, a chat history for a single-question model, prompt + ``max_new_tokens``
over the context length) gets a ``Refusal``; the others still share their group's call (requests
that each encode but not together, e.g. pixels the processor cannot stack, are generated one by
one). ``generate_checked`` then runs one ``model.generate`` per group and returns one
``Generation`` or ``Refusal`` per request, in order.

A failure is its request's alone: a group whose processor call or ``model.generate`` raises is
encoded and generated again request by request, so only the request that fails alone is refused
(``failure_refusal``: a ``ValueError`` is the library refusing that input, code ``""``; anything
else is ``FAILED``, a failure on the server's side). The other requests get their answers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image
from transformers import BatchFeature, PreTrainedModel, ProcessorMixin

from ray_vlm.model.generation import (
    Generation,
    Prompt,
    SamplingParams,
    encode_prompts,
    generate_encoded,
)
from ray_vlm.preprocess import prompt_style

Request = tuple[Sequence[Image.Image], Prompt]
"""``(images, question or turns)``, as ``generate`` takes it."""

TOO_LONG = "context_length_exceeded"
FAILED = "failed"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """Why the model cannot take one request; ``code``: ``context_length_exceeded``, ``chat``
    (history for a single-question model), ``image`` (its image could not be read), ``""`` (the
    processor's or the model's own message about this input), ``failed`` (encoding or generating
    it alone raised something else: the server's side) or ``replica`` (no replica answered it)."""

    reason: str
    code: str = ""


def failure_refusal(err: Exception, who: str) -> Refusal:
    """The refusal of a request whose encoding or generation (by ``who``) raised ``err`` alone:
    a ``ValueError`` is the library refusing this input (code ``""``), anything else ``FAILED``."""
    if isinstance(err, ValueError):
        return Refusal(f"{who} refused the request: {err}")
    return Refusal(f"{who} failed on the request: {type(err).__name__}: {err}", FAILED)


@dataclass
class Encoded:
    """``groups``: ``(request indices, their model inputs)``, one ``model.generate`` each;
    ``refusals``: request index -> ``Refusal``. Together they cover every request once.
    ``checker`` encodes the requests again (one by one when a group's generation fails)."""

    checker: _Checker
    groups: list[tuple[list[int], BatchFeature]] = field(default_factory=list)
    refusals: dict[int, Refusal] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.checker.requests)


def _turn_count(prompt: Prompt) -> int:
    return 1 if isinstance(prompt, str) else len(prompt)


class _Checker:
    def __init__(
        self,
        processor: ProcessorMixin,
        requests: Sequence[Request | Refusal],
        max_new_tokens: int,
        context_length: int,
    ) -> None:
        self.processor, self.requests = processor, requests
        self.max_new_tokens, self.context_length = max_new_tokens, context_length
        self.most_tokens = context_length - max_new_tokens

    def encode(self, indices: list[int], out: Encoded) -> None:
        """Add ``indices`` to ``out``: one group when they encode together and all fit."""
        try:
            inputs = encode_prompts(self.processor, [self.requests[i] for i in indices])
        except Exception as err:
            if len(indices) > 1:
                self._encode_apart(indices, out)
            else:  # the processor's own message (e.g. images it needs), or its failure
                out.refusals[indices[0]] = failure_refusal(err, "the model's processor")
            return
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        long = {i: n for i, n in zip(indices, lengths, strict=True) if n > self.most_tokens}
        if not long:
            out.groups.append((indices, inputs))
            return
        for i, n in long.items():
            out.refusals[i] = self._too_long(n)
        rest = [i for i in indices if i not in long]
        if rest:
            self.encode(rest, out)

    def _encode_apart(self, indices: list[int], out: Encoded) -> None:
        """The group did not encode together: each request alone finds the refused ones; the
        others are encoded together again, or kept apart when they alone failed together
        (e.g. pixels the processor cannot stack)."""
        alone = self.apart(indices)
        out.refusals.update(alone.refusals)
        accepted = [members[0] for members, _ in alone.groups]
        if 1 < len(accepted) < len(indices):
            self.encode(accepted, out)
        else:
            out.groups += alone.groups

    def apart(self, indices: list[int]) -> Encoded:
        """``indices`` encoded one by one: a group of one each, or a refusal."""
        alone = Encoded(self)
        for i in indices:
            self.encode([i], alone)
        return alone

    def _too_long(self, prompt_tokens: int) -> Refusal:
        return Refusal(
            f"This model's maximum context length is {self.context_length} tokens; the request has "
            f"{prompt_tokens} prompt tokens and asks for {self.max_new_tokens} more",
            TOO_LONG,
        )


def encode_checked(
    processor: ProcessorMixin,
    requests: Sequence[Request | Refusal],
    max_new_tokens: int,
    context_length: int,
    max_group: int,
) -> Encoded:
    """Model inputs of ``requests`` in groups of at most ``max_group`` similar-length prompts,
    and a ``Refusal`` for each request the model cannot take (see the module docstring). A
    ``Refusal`` among ``requests`` (e.g. its image could not be read) is kept as it is."""
    checker = _Checker(processor, requests, max_new_tokens, context_length)
    out = Encoded(checker)
    chat = prompt_style(processor) == "chat"
    accepted = []
    for i, request in enumerate(requests):
        if isinstance(request, Refusal):
            out.refusals[i] = request
        elif not chat and _turn_count(request[1]) > 1:
            out.refusals[i] = Refusal("this model takes a single question: no chat history", "chat")
        else:
            accepted.append(i)
    accepted.sort(key=lambda i: _prompt_chars(requests[i][1]))  # type: ignore[index]
    for start in range(0, len(accepted), max_group):
        checker.encode(accepted[start : start + max_group], out)
    return out


def _prompt_chars(prompt: Prompt) -> int:
    return len(prompt) if isinstance(prompt, str) else sum(len(t.text) for t in prompt)


def generate_checked(
    model: PreTrainedModel,
    processor: ProcessorMixin,
    encoded: Encoded,
    params: SamplingParams,
) -> list[Generation | Refusal]:
    """One ``model.generate`` per group of ``encoded``: a ``Generation`` or ``Refusal`` per
    request, in the requests' order. A group whose call raises is generated request by request
    (see the module docstring); nothing raised here reaches the caller."""
    results: list[Generation | Refusal | None] = [None] * encoded.count
    _generate_groups(model, processor, encoded, params, results)
    return results  # type: ignore[return-value]


def _generate_groups(
    model: PreTrainedModel,
    processor: ProcessorMixin,
    encoded: Encoded,
    params: SamplingParams,
    results: list[Generation | Refusal | None],
) -> None:
    for i, refusal in encoded.refusals.items():
        results[i] = refusal
    for indices, inputs in encoded.groups:
        try:
            answers = generate_encoded(model, processor, inputs, params)
        except Exception as err:
            if len(indices) == 1:
                results[indices[0]] = failure_refusal(err, "the model")
                continue
            logger.warning(
                "model.generate failed on %d requests together (%s: %s); generating them one by one",
                len(indices),
                type(err).__name__,
                err,
            )
            _generate_groups(model, processor, encoded.checker.apart(indices), params, results)
            continue
        for i, generation in zip(indices, answers, strict=True):
            results[i] = generation
