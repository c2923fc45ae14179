"""Generation replicas: the model loaded once per replica; two ways in.

- ``generate(GenerationRequest)``: one HTTP request. The replica collects concurrent requests
  with ``@serve.batch`` (up to ``batching.max_batch_size``, waiting at most
  ``batching.batch_wait_timeout_s``) and runs them together: one ``model.generate`` per group of
  requests with identical ``SamplingParams``.
- ``generate_records(RecordBatch)``: a batch evaluation's whole batch in one call. The replica
  reads the records' images itself (nothing is pickled per record), encodes them in groups of
  similar prompt length (at most ``batching.max_batch_size`` each) and answers each record with a
  ``Generation`` or a ``Refusal``.

A failure is its request's or record's alone: one whose image cannot be read, or whose encoding or
generation fails (when its group fails, the group is generated again one by one,
``ray_vlm.model.request_batches``), is refused (HTTP 4xx for its input, 500 for a failure on the
server's side); the requests batched with it are answered.

The processor's work (image decoding, encoding) runs in a worker thread outside the model lock,
so the replica prepares the next record batch while the model generates the current one;
generation itself runs one batch at a time. At most ``INPUTS_HELD`` record batches hold model
inputs at once (one generating, one prepared): further batches wait as records (paths and text),
so a sender may keep more batches at a replica, to cover the round trip of the answers, without
the replica holding more pixels. The event loop stays free for new requests and health checks.
"""

from __future__ import annotations

import asyncio
import logging
import time

import torch
from ray import serve

from ray_vlm.config.secrets import install_log_masking
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.model import Generation, SamplingParams
from ray_vlm.model.request_batches import (
    FAILED,
    TOO_LONG,
    Encoded,
    Refusal,
    Request,
    encode_checked,
    generate_checked,
)
from ray_vlm.records import load_image
from ray_vlm.serve.checkpoint import load_for_serving
from ray_vlm.serve.errors import RequestError
from ray_vlm.serve.request import GenerationRequest, RecordBatch, RecordPrompt

logger = logging.getLogger("ray.serve")

REFUSAL_PARAM = {TOO_LONG: "messages", "chat": "messages"}
INPUTS_HELD = 2


def as_request_error(refusal: Refusal) -> RequestError:
    """The error an interactive request gets for ``refusal``: HTTP 500 (``server_error``) when
    it failed on the server's side (``FAILED``), else 400."""
    if refusal.code == FAILED:
        return RequestError(500, refusal.reason, None, None, "server_error")
    code = refusal.code if refusal.code == TOO_LONG else None
    return RequestError(400, refusal.reason, REFUSAL_PARAM.get(refusal.code), code)


@serve.deployment
class VLMGenerator:
    """Serve deployment; call ``generate`` or ``generate_records`` through a handle."""

    def __init__(self, cfg: ServeConfig) -> None:
        install_log_masking()
        torch.set_num_threads(max(1, int(cfg.replicas.num_cpus)))
        self.model, self.processor = load_for_serving(cfg.ckpt, cfg.dtype, cfg.processor_kwargs)
        self.context_length = self.model.config.get_text_config().max_position_embeddings
        self.max_group = cfg.batching.max_batch_size
        self._model_busy = asyncio.Lock()
        self._inputs_held = asyncio.Semaphore(INPUTS_HELD)
        self._generate_batch.set_max_batch_size(cfg.batching.max_batch_size)
        self._generate_batch.set_batch_wait_timeout_s(cfg.batching.batch_wait_timeout_s)

    async def generate(self, request: GenerationRequest) -> Generation:
        """The answer, or ``RequestError`` (400) if the model cannot take the request."""
        result = await self._generate_batch(request)
        if isinstance(result, Refusal):
            raise as_request_error(result)
        return result

    async def generate_records(self, batch: RecordBatch) -> list[Generation | Refusal]:
        """One answer or refusal per record of ``batch``, in order (see the module docstring)."""
        async with self._inputs_held:
            start = time.perf_counter()
            encoded = await asyncio.to_thread(self._read_and_encode, batch)
            async with self._model_busy:
                waited = time.perf_counter()
                results = await asyncio.to_thread(
                    generate_checked, self.model, self.processor, encoded, batch.params
                )
        logger.info(
            "%d records in %d generate calls: prepared in %.0f ms, generated in %.0f ms",
            len(batch.records),
            len(encoded.groups),
            1000 * (waited - start),
            1000 * (time.perf_counter() - waited),
        )
        return results

    async def context_length_tokens(self) -> int:
        """Longest prompt + answer the model takes, in tokens (also a cheap liveness probe)."""
        return self.context_length

    # Placeholder sizes: __init__ sets the configured ones.
    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)
    async def _generate_batch(
        self, requests: list[GenerationRequest]
    ) -> list[Generation | Refusal]:
        async with self._model_busy:
            return await asyncio.to_thread(self._run_batch, requests)

    def _run_batch(self, requests: list[GenerationRequest]) -> list[Generation | Refusal]:
        """Generate the requests group by group of equal sampling parameters."""
        groups: dict[SamplingParams, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(request.params, []).append(i)
        results: list[Generation | Refusal | None] = [None] * len(requests)
        for params, members in groups.items():
            encoded = self._encode(
                [(requests[i].images, requests[i].turns) for i in members], params
            )
            answers = generate_checked(self.model, self.processor, encoded, params)
            for i, answer in zip(members, answers, strict=True):
                results[i] = answer
        return results  # type: ignore[return-value]

    def _read_and_encode(self, batch: RecordBatch) -> Encoded:
        """Read every record's images (a record whose image cannot be read is refused), then
        encode the readable ones."""
        return self._encode([_read(record) for record in batch.records], batch.params)

    def _encode(self, requests: list[Request | Refusal], params: SamplingParams) -> Encoded:
        return encode_checked(
            self.processor, requests, params.max_new_tokens, self.context_length, self.max_group
        )


def _read(record: RecordPrompt) -> Request | Refusal:
    """The record's images and turns, or its refusal when an image cannot be read (any error:
    missing, undecodable, storage unreachable)."""
    try:
        return [load_image(path) for path in record.image_paths], list(record.turns)
    except Exception as err:
        return Refusal(str(err), "image")
