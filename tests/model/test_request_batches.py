"""``encode_checked`` / ``generate_checked``: a batch of requests in a few ``model.generate``
calls, each request answered or refused on its own, on the demo's tiny models (a failure inside
the model is injected with a forward hook on its real vision tower)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ray_vlm.model import SamplingParams, generate, load_model, load_processor
from ray_vlm.model.request_batches import FAILED, Refusal, encode_checked, generate_checked
from ray_vlm.records import ASSISTANT, USER, Turn

PARAMS = SamplingParams(max_new_tokens=4)


def _model(demo_assets: Path, name: str):
    path = str(demo_assets / "models" / name)
    return load_model(path, "float32"), load_processor(path)


def _images(demo_assets: Path) -> list[Image.Image]:
    paths = sorted((demo_assets / "data/plm/shapes/images").glob("test_*.png"))[:3]
    return [Image.open(p).convert("RGB") for p in paths]


def test_refused_requests_leave_the_rest_of_their_group_answered(demo_assets: Path) -> None:
    model, processor = _model(demo_assets, "llava")
    a, b, c = _images(demo_assets)
    chat = [Turn(USER, "Describe the image."), Turn(ASSISTANT, "a"), Turn(USER, "More?")]
    requests = [
        ([a], "Describe the image."),
        ([b], "What is <image> here?"),  # one image, two image tokens: the processor refuses
        ([c], "word " * 700),  # over the context length
        ([b], chat),
        ([], "Hi"),
        ([c], "What shape is it?"),
    ]
    encoded = encode_checked(processor, requests, PARAMS.max_new_tokens, 512, max_group=4)
    assert sorted(encoded.refusals) == [1, 2]
    assert "refused the request" in encoded.refusals[1].reason
    assert encoded.refusals[2].code == "context_length_exceeded"
    assert "maximum context length is 512 tokens" in encoded.refusals[2].reason
    assert sorted(i for members, _ in encoded.groups for i in members) == [0, 3, 4, 5]
    assert len(encoded.groups) <= 2  # max_group 4: the four accepted in at most two calls

    results = generate_checked(model, processor, encoded, PARAMS)
    assert [type(r) for r in results] == [
        type(results[0]),
        Refusal,
        Refusal,
        *[type(results[0])] * 3,
    ]
    for i in (0, 3, 4, 5):  # the same greedy answer as the request alone
        assert results[i].text == generate(model, processor, [requests[i]], PARAMS)[0].text


def test_groups_follow_prompt_length_and_keep_the_requests_order(demo_assets: Path) -> None:
    model, processor = _model(demo_assets, "llava")
    (a, *_) = _images(demo_assets)
    questions = ["Hi", "What colour is the shape here in this picture?", "Why?", "Where is it now?"]
    requests = [([a], q) for q in questions]
    encoded = encode_checked(processor, requests, PARAMS.max_new_tokens, 512, max_group=2)
    assert [members for members, _ in encoded.groups] == [[0, 2], [3, 1]]  # shortest first
    results = generate_checked(model, processor, encoded, PARAMS)
    alone = [generate(model, processor, [r], PARAMS)[0] for r in requests]
    assert [r.text for r in results] == [r.text for r in alone]
    assert [r.prompt_tokens for r in results] == [r.prompt_tokens for r in alone]


def test_a_single_question_model_refuses_chat_history(demo_assets: Path) -> None:
    _, processor = _model(demo_assets, "paligemma")
    (a, *_) = _images(demo_assets)
    chat = [Turn(USER, "caption en"), Turn(ASSISTANT, "a"), Turn(USER, "More?")]
    encoded = encode_checked(processor, [([a], chat), ([a], "caption en")], 4, 512, 8)
    assert encoded.refusals == {
        0: Refusal("this model takes a single question: no chat history", "chat")
    }
    assert [members for members, _ in encoded.groups] == [[1]]


@pytest.mark.parametrize("max_group", [1, 3])
def test_every_request_is_answered_or_refused_once(demo_assets: Path, max_group: int) -> None:
    _, processor = _model(demo_assets, "perception_lm")
    a, b, _ = _images(demo_assets)
    extra_image = f"x {processor.image_token} y"  # one image more than given: refused
    requests = [([a], "Describe."), ([b], extra_image), ([a, b], "Both?"), ([], "Hi")]
    encoded = encode_checked(processor, requests, 4, 4096, max_group)
    covered = [i for members, _ in encoded.groups for i in members] + list(encoded.refusals)
    assert sorted(covered) == [0, 1, 2, 3]
    assert list(encoded.refusals) == [1]


def _fail_on_white(_, args) -> None:
    """Vision tower pre-hook: a batch holding an all-white image fails, as a data-dependent
    crash inside ``model.generate`` would (white is the highest value CLIP normalises to)."""
    pixels = args[0]
    if (pixels.flatten(1).min(dim=1).values > 1.5).any():
        raise RuntimeError("poisoned pixels")


def test_a_failing_generate_call_fails_only_its_own_request(demo_assets: Path) -> None:
    model, processor = _model(demo_assets, "llava")
    a, b, c = _images(demo_assets)
    white = Image.new("RGB", (32, 32), "white")
    requests = [([a], "Describe."), ([white], "Describe."), ([b], "Describe."), ([c], "Why?")]
    alone = [generate(model, processor, [r], PARAMS)[0] for r in requests if r[0][0] is not white]
    hook = model.model.vision_tower.register_forward_pre_hook(_fail_on_white)
    try:
        encoded = encode_checked(processor, requests, PARAMS.max_new_tokens, 512, max_group=4)
        assert [sorted(members) for members, _ in encoded.groups] == [[0, 1, 2, 3]]  # one call
        results = generate_checked(model, processor, encoded, PARAMS)
    finally:
        hook.remove()
    assert results[1].code == FAILED and "RuntimeError: poisoned pixels" in results[1].reason
    assert [results[i].text for i in (0, 2, 3)] == [g.text for g in alone]


def test_a_processor_failure_refuses_only_its_request(demo_assets: Path) -> None:
    """Not a ``ValueError``: the processor crashed on this input (500), the others are encoded."""
    _, processor = _model(demo_assets, "llava")
    a, b, _ = _images(demo_assets)
    broken = Image.new("RGB", (32, 32))
    broken.im = None  # a PIL image whose pixels are gone: the image processor raises on it
    requests = [([a], "Describe."), ([broken], "Describe."), ([b], "Describe.")]
    encoded = encode_checked(processor, requests, 4, 512, max_group=4)
    assert list(encoded.refusals) == [1] and encoded.refusals[1].code == FAILED
    assert [members for members, _ in encoded.groups] == [[0, 2]]
