"""``PendingRecords``: a record batch is re-sent when its replica dies, within the retry budget;
past it, or on any other failure, every record is refused (code ``replica``), none lost.

The replicas are stood in for by responses that fail or answer; the real path (a replica killed
mid-evaluation) is ``tests/evaluate/test_eval_fault_tolerance.py``.
"""

from __future__ import annotations

from ray.exceptions import ActorDiedError

from ray_vlm.model import Generation
from ray_vlm.model.request_batches import Refusal
from ray_vlm.serve.handle import PendingRecords, VLMHandle

ANSWERS = [Generation("red", 5, 1, "stop"), Refusal("too long", "context_length_exceeded")]


class Response:
    def __init__(self, outcome: list | Exception) -> None:
        self.outcome = outcome

    def result(self, timeout_s: float | None = None) -> list:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def pending(outcomes: list, retries: int) -> tuple[PendingRecords, list]:
    sent: list = []

    def send() -> Response:
        sent.append(outcomes[len(sent)])
        return Response(sent[-1])

    return PendingRecords(send, len(ANSWERS), VLMHandle(None, retries)._give_up_or_log), sent


def test_a_batch_whose_replica_died_is_sent_again() -> None:
    batch, sent = pending([ActorDiedError(), ActorDiedError(), ANSWERS], retries=2)
    assert batch.result() == ANSWERS
    assert len(sent) == 3


def test_past_the_retry_budget_every_record_is_refused() -> None:
    batch, sent = pending([ActorDiedError(), ActorDiedError(), ANSWERS], retries=1)
    answers = batch.result()
    assert len(sent) == 2
    assert len(answers) == len(ANSWERS)
    assert {a.code for a in answers} == {"replica"}
    assert "failed 2 times" in answers[0].reason


def test_any_other_failure_refuses_the_batch_alone() -> None:
    batch, sent = pending([TimeoutError("no answer in 5 s")], retries=3)
    answers = batch.result()
    assert len(sent) == 1
    assert [a.code for a in answers] == ["replica", "replica"]
    assert answers[0].reason == "generation failed: no answer in 5 s"
