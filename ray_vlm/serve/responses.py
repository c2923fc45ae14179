"""A finished ``Generation`` as an OpenAI response: one JSON body, or a server-sent event stream.

Streaming is honest about batching: the answer is generated in a dynamic batch first, then sent
as a stream of chunks (one per word) ending with ``data: [DONE]``. Clients that need ``stream:
true`` work unchanged; the first chunk arrives when the whole answer is ready, not earlier.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel

from ray_vlm.model import Generation
from ray_vlm.serve.openai_schema import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    Usage,
)

_WORD_STARTS = re.compile(r"(?<=\s)(?=\S)")


@dataclass(frozen=True)
class ResponseIds:
    """The id, creation time and model name every response (and stream chunk) carries."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))


def usage(g: Generation) -> Usage:
    return Usage(
        prompt_tokens=g.prompt_tokens,
        completion_tokens=g.completion_tokens,
        total_tokens=g.prompt_tokens + g.completion_tokens,
    )


def completion(g: Generation, ids: ResponseIds) -> ChatCompletion:
    return ChatCompletion(
        id=ids.id,
        created=ids.created,
        model=ids.model,
        choices=[Choice(message=AssistantMessage(content=g.text), finish_reason=g.finish_reason)],
        usage=usage(g),
    )


def _sse(payload: BaseModel | str) -> str:
    data = payload if isinstance(payload, str) else payload.model_dump_json()
    return f"data: {data}\n\n"


def stream_events(g: Generation, ids: ResponseIds, include_usage: bool) -> Iterator[str]:
    """SSE lines: the role, the text word by word, the finish reason, usage if asked, [DONE]."""

    def chunk(delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        return ChatCompletionChunk(
            id=ids.id, created=ids.created, model=ids.model, choices=[choice]
        )

    yield _sse(chunk(Delta(role="assistant", content="")))
    for piece in _WORD_STARTS.split(g.text):
        if piece:
            yield _sse(chunk(Delta(content=piece)))
    yield _sse(chunk(Delta(), g.finish_reason))
    if include_usage:
        yield _sse(
            ChatCompletionChunk(
                id=ids.id, created=ids.created, model=ids.model, choices=[], usage=usage(g)
            )
        )
    yield _sse("[DONE]")
