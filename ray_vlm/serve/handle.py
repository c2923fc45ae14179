"""In-cluster access to the generation replicas, skipping HTTP (batch evaluation uses this).

From any Ray task or actor of the cluster the application runs on::

    vlm = VLMHandle.connect(app_name="ray_vlm", retries=2)
    answers = vlm.generate_many([([image], "Describe the image."), ...], SamplingParams())

Each request goes to a replica on its own; the replicas batch concurrent requests themselves. A
request whose replica dies is re-sent (generation has no side effects) up to ``retries`` times.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PIL import Image
from ray import serve
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from ray_vlm.model import Generation, SamplingParams
from ray_vlm.model.generation import Prompt
from ray_vlm.preprocess import question_turns
from ray_vlm.serve.request import GenerationRequest

GENERATOR_DEPLOYMENT = "VLMGenerator"
REPLICA_FAILURES = (ActorDiedError, ActorUnavailableError)
"""A replica died or is unreachable while holding the request: safe to send it again."""

logger = logging.getLogger(__name__)


class ReplicaFailedError(RuntimeError):
    """A request lost its replica more times than the retry budget allows."""


def as_request(
    images: Sequence[Image.Image], prompt: Prompt, params: SamplingParams
) -> GenerationRequest:
    turns = question_turns(prompt) if isinstance(prompt, str) else prompt
    return GenerationRequest(tuple(images), tuple(turns), params)


class VLMHandle:
    """Calls ``VLMGenerator.generate`` with retries on replica death, sync or async."""

    def __init__(self, handle: DeploymentHandle, retries: int) -> None:
        self._handle = handle
        self.retries = retries

    @classmethod
    def connect(cls, app_name: str, retries: int) -> VLMHandle:
        """Handle to the generation replicas of the running application ``app_name``."""
        return cls(serve.get_deployment_handle(GENERATOR_DEPLOYMENT, app_name), retries)

    def _send(self, request: GenerationRequest) -> DeploymentResponse:
        return self._handle.generate.remote(request)

    def _give_up_or_log(self, attempt: int, err: Exception) -> None:
        if attempt >= self.retries:
            raise ReplicaFailedError(
                f"generation replica failed {attempt + 1} times for one request: {err}"
            ) from err
        logger.warning("generation replica failed (%s); re-sending the request", err)

    async def generate_async(self, request: GenerationRequest) -> Generation:
        """Answer one request (inside an async actor, e.g. the HTTP front)."""
        attempt = 0
        while True:
            try:
                return await self._send(request)
            except REPLICA_FAILURES as err:
                self._give_up_or_log(attempt, err)
                attempt += 1

    def generate_many(
        self,
        requests: Sequence[tuple[Sequence[Image.Image], Prompt]],
        params: SamplingParams,
        timeout_s: float | None = None,
        return_errors: bool = False,
    ) -> list[Generation] | list[Generation | Exception]:
        """Answer ``(images, question or turns)`` requests, all sent at once, in order.

        ``return_errors``: a request that fails (refused, timed out, out of retries) gives its
        exception in its place instead of raising, so one bad request does not sink the rest.
        """
        reqs = [as_request(images, prompt, params) for images, prompt in requests]
        responses = [self._send(r) for r in reqs]
        results: list[Generation | Exception] = []
        for request, response in zip(reqs, responses, strict=True):
            try:
                results.append(self._collect(request, response, timeout_s))
            except Exception as err:
                if not return_errors:
                    raise
                results.append(err)
        return results

    def _collect(
        self, request: GenerationRequest, response: DeploymentResponse, timeout_s: float | None
    ) -> Generation:
        attempt = 0
        while True:
            try:
                return response.result(timeout_s=timeout_s)
            except REPLICA_FAILURES as err:
                self._give_up_or_log(attempt, err)
                attempt += 1
                response = self._send(request)

    async def context_length_tokens(self) -> int:
        return await self._handle.context_length_tokens.remote()
