"""OpenAI ``messages`` + sampling fields -> a ``GenerationRequest`` (or a 400 saying what to fix).

Mapping onto ray_vlm's conversation model (the one training uses):
- ``system``/``developer`` messages (text only, before the first user message) are prepended to
  the first user turn's text, separated by a blank line;
- consecutive messages of one role are merged (texts joined by newlines);
- every image, from any user message, is shown before the first user turn's text, in order;
- the conversation must end with a user message (the question to answer).
"""

from __future__ import annotations

from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.model import SamplingParams
from ray_vlm.records import USER, Turn
from ray_vlm.serve.errors import RequestError
from ray_vlm.serve.images import decode_image_url
from ray_vlm.serve.openai_schema import ChatCompletionRequest, ImagePart, Message
from ray_vlm.serve.request import GenerationRequest

SYSTEM_ROLES = ("system", "developer")


def _texts_and_image_urls(message: Message, index: int) -> tuple[str, list[tuple[str, str]]]:
    """The message's text (parts joined by newlines) and its ``(param, url)`` image parts."""
    if isinstance(message.content, str):
        return message.content, []
    texts, urls = [], []
    for j, part in enumerate(message.content):
        if isinstance(part, ImagePart):
            urls.append((f"messages.{index}.content.{j}", part.image_url.url))
        else:
            texts.append(part.text)
    return "\n".join(texts), urls


def to_generation_request(body: ChatCompletionRequest, cfg: ServeConfig) -> GenerationRequest:
    """Validate and convert; images are decoded here (the slow part: call it off the event loop).

    Raises ``RequestError`` (HTTP 400) for a conversation the model cannot take, too many or bad
    images, or sampling values over the configured limits.
    """
    system: list[str] = []
    turns: list[Turn] = []
    image_urls: list[tuple[str, str]] = []
    for i, message in enumerate(body.messages):
        text, urls = _texts_and_image_urls(message, i)
        if message.role in SYSTEM_ROLES:
            if turns or urls:
                raise RequestError(
                    400, "system messages must be text and come before the others", f"messages.{i}"
                )
            system.append(text)
            continue
        if urls and message.role != USER:
            raise RequestError(400, "only user messages may contain images", f"messages.{i}")
        image_urls += urls
        if turns and turns[-1].role == message.role:
            turns[-1] = Turn(message.role, f"{turns[-1].text}\n{text}")
        else:
            turns.append(Turn(message.role, text))
    if not turns or turns[0].role != USER or turns[-1].role != USER:
        raise RequestError(
            400,
            "messages must start and end with a user message (system messages may lead)",
            "messages",
        )
    if system:
        turns[0] = Turn(USER, "\n".join(system) + "\n\n" + turns[0].text)
    limits = cfg.limits
    if len(image_urls) > limits.max_images:
        raise RequestError(
            400,
            f"{len(image_urls)} images in the request; the limit is {limits.max_images}",
            "messages",
            "too_many_images",
        )
    images = tuple(
        decode_image_url(url, limits.max_image_bytes, limits.max_image_pixels, param)
        for param, url in image_urls
    )
    return GenerationRequest(images, tuple(turns), sampling_params(body, cfg))


def sampling_params(body: ChatCompletionRequest, cfg: ServeConfig) -> SamplingParams:
    """The request's sampling fields, its missing ones from ``cfg.defaults``; 400 over the limit."""
    if (
        body.max_tokens
        and body.max_completion_tokens
        and body.max_tokens != body.max_completion_tokens
    ):
        raise RequestError(400, "max_tokens and max_completion_tokens disagree", "max_tokens")
    max_tokens = body.max_completion_tokens or body.max_tokens or cfg.defaults.max_tokens
    if max_tokens > cfg.limits.max_tokens:
        raise RequestError(
            400,
            f"max_tokens is {max_tokens}; this server allows at most {cfg.limits.max_tokens}",
            "max_tokens",
        )
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return SamplingParams(
        max_new_tokens=max_tokens,
        temperature=cfg.defaults.temperature if body.temperature is None else body.temperature,
        top_p=cfg.defaults.top_p if body.top_p is None else body.top_p,
        stop=stop,
    )
