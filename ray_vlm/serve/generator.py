"""Generation replicas: the model loaded once per replica, concurrent requests batched dynamically.

Each replica collects requests with ``@serve.batch`` (up to ``batching.max_batch_size``, waiting at
most ``batching.batch_wait_timeout_s``) and runs one batch at a time in a worker thread, so the
replica's event loop keeps accepting requests (they form the next batch) and health checks.

Per-request sampling: a batch is split into groups of requests with identical ``SamplingParams``
(temperature, top_p, max_tokens, stop); each group is one left-padded ``model.generate`` call and
the groups of a batch run one after another. Clients that send the same parameters (evaluations,
benchmarks) therefore share one call, which reuses the inputs the length check encoded; mixed
parameters still work, in smaller calls.
"""

from __future__ import annotations

import asyncio
import logging
import time

import torch
from ray import serve
from transformers import BatchFeature

from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.model import Generation, SamplingParams, encode_prompts, generate_encoded
from ray_vlm.preprocess import prompt_style
from ray_vlm.serve.checkpoint import load_for_serving
from ray_vlm.serve.errors import RequestError
from ray_vlm.serve.request import GenerationRequest

logger = logging.getLogger("ray.serve")


@serve.deployment
class VLMGenerator:
    """Serve deployment; call ``generate(GenerationRequest) -> Generation`` through a handle."""

    def __init__(self, cfg: ServeConfig) -> None:
        torch.set_num_threads(max(1, int(cfg.replicas.num_cpus)))
        self.model, self.processor = load_for_serving(cfg.ckpt, cfg.dtype, cfg.processor_kwargs)
        self.context_length = self.model.config.get_text_config().max_position_embeddings
        self.chat = prompt_style(self.processor) == "chat"
        self._generate_batch.set_max_batch_size(cfg.batching.max_batch_size)
        self._generate_batch.set_batch_wait_timeout_s(cfg.batching.batch_wait_timeout_s)

    async def generate(self, request: GenerationRequest) -> Generation:
        """The answer, or ``RequestError`` (400) if the model cannot take the request."""
        result = await self._generate_batch(request)
        if isinstance(result, RequestError):
            raise result
        return result

    async def context_length_tokens(self) -> int:
        """Longest prompt + answer the model takes, in tokens (also a cheap liveness probe)."""
        return self.context_length

    # Placeholder sizes: __init__ sets the configured ones.
    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)
    async def _generate_batch(
        self, requests: list[GenerationRequest]
    ) -> list[Generation | RequestError]:
        return await asyncio.to_thread(self._run_batch, requests)

    def _run_batch(self, requests: list[GenerationRequest]) -> list[Generation | RequestError]:
        """Reject the requests the model cannot take, generate the others group by group."""
        start = time.perf_counter()
        results, checked = self._refusals(requests)
        groups: dict[SamplingParams, list[int]] = {}
        for i, request in enumerate(requests):
            if results[i] is None:
                groups.setdefault(request.params, []).append(i)
        for params, members in groups.items():
            inputs = (
                checked
                if checked is not None and len(members) == len(requests)
                else self._encode([requests[i] for i in members])
            )
            generations = generate_encoded(self.model, self.processor, inputs, params)
            for i, generation in zip(members, generations, strict=True):
                results[i] = generation
        logger.info(
            "batch of %d requests in %d sampling groups: %.0f ms",
            len(requests),
            len(groups),
            1000 * (time.perf_counter() - start),
        )
        return results  # type: ignore[return-value]

    def _encode(self, requests: list[GenerationRequest]) -> BatchFeature:
        """The model inputs of ``requests`` (``ValueError``: the model cannot take them)."""
        if not self.chat and any(len(r.turns) > 1 for r in requests):
            raise ValueError("chat history for a single-question model")
        return encode_prompts(self.processor, [(r.images, r.turns) for r in requests])

    def _refusals(
        self, requests: list[GenerationRequest]
    ) -> tuple[list[Generation | RequestError | None], BatchFeature | None]:
        """``None`` for each request the model can take, else the ``RequestError`` saying why;
        and the whole batch's model inputs when every request could be encoded together.

        One processor call checks the whole batch (generation reuses its inputs when the batch
        is one sampling group); only when it fails is each request checked on its own, to find
        the ones to refuse (the processor's work is most of a check's cost).
        """
        try:
            inputs = self._encode(requests)
        except ValueError:
            return [self._refusal(r) for r in requests], None
        counts = inputs["attention_mask"].sum(dim=1).tolist()
        return [self._too_long(r, n) for r, n in zip(requests, counts, strict=True)], inputs

    def _refusal(self, request: GenerationRequest) -> RequestError | None:
        """``RequestError`` when the conversation or its length does not fit this model."""
        if not self.chat and len(request.turns) > 1:
            return RequestError(
                400, "this model takes a single question: no chat history", "messages"
            )
        try:
            inputs = self._encode([request])
        except ValueError as err:  # the processor's own message (e.g. images it needs)
            return RequestError(400, f"the model's processor refused the request: {err}")
        return self._too_long(request, int(inputs["attention_mask"].sum()))

    def _too_long(self, request: GenerationRequest, prompt_tokens: int) -> RequestError | None:
        wanted = prompt_tokens + request.params.max_new_tokens
        if wanted <= self.context_length:
            return None
        return RequestError(
            400,
            f"This model's maximum context length is {self.context_length} tokens; the "
            f"request has {prompt_tokens} prompt tokens and asks for "
            f"{request.params.max_new_tokens} more",
            "messages",
            "context_length_exceeded",
        )
