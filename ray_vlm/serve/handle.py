"""In-cluster access to the generation replicas, skipping HTTP (batch evaluation uses this).

From any Ray task or actor of the cluster the application runs on::

    vlm = VLMHandle.connect(app_name="ray_vlm", retries=2)
    batch = RecordBatch((RecordPrompt(("s3://b/0.png",), question_turns("Describe.")),), params)
    answers = vlm.submit_records(batch).result()  # a Generation or a Refusal per record

A call whose replica dies is re-sent (generation has no side effects) up to ``retries`` times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ray import serve
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from ray_vlm.model import Generation
from ray_vlm.model.request_batches import Refusal
from ray_vlm.serve.request import GenerationRequest, RecordBatch

GENERATOR_DEPLOYMENT = "VLMGenerator"
REPLICA_FAILURES = (ActorDiedError, ActorUnavailableError)
"""A replica died or is unreachable while holding the request: safe to send it again."""

logger = logging.getLogger(__name__)


class ReplicaFailedError(RuntimeError):
    """A request lost its replica more times than the retry budget allows."""


class VLMHandle:
    """Calls ``VLMGenerator.generate`` (async) or ``generate_records`` (``submit_records``),
    re-sending a call whose replica died."""

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

    def submit_records(self, batch: RecordBatch) -> PendingRecords:
        """Send ``batch`` whole to one replica; ``.result()`` waits for its answers."""
        return PendingRecords(
            lambda: self._handle.generate_records.remote(batch),
            len(batch.records),
            self._give_up_or_log,
        )

    async def context_length_tokens(self) -> int:
        return await self._handle.context_length_tokens.remote()


class PendingRecords:
    """A batch of ``count`` records on its way through a replica (``VLMHandle.submit_records``).

    ``send()`` (re-)sends the batch; ``give_up_or_log(attempt, err)`` raises
    ``ReplicaFailedError`` once the retry budget is spent, else logs the re-send.
    """

    def __init__(
        self,
        send: Callable[[], DeploymentResponse],
        count: int,
        give_up_or_log: Callable[[int, Exception], None],
    ) -> None:
        self._send, self.count, self._give_up_or_log = send, count, give_up_or_log
        self._attempt = 0
        self._response = send()

    def result(self, timeout_s: float | None = None) -> list[Generation | Refusal]:
        """A ``Generation`` or ``Refusal`` per record, in order. A batch that fails as a whole
        (its replica died more than ``retries`` times, timed out) gives every record a
        ``Refusal`` with code ``replica``: its records are counted, not lost."""
        while True:
            try:
                return self._response.result(timeout_s=timeout_s)
            except REPLICA_FAILURES as err:
                try:
                    self._give_up_or_log(self._attempt, err)
                except ReplicaFailedError as failed:
                    return self._refuse_all(str(failed))
                self._attempt += 1
                self._response = self._send()
            except Exception as err:  # any other failure (timeout, ...) is this batch's alone
                return self._refuse_all(f"generation failed: {err}")

    def _refuse_all(self, reason: str) -> list[Generation | Refusal]:
        return [Refusal(reason, "replica")] * self.count
