"""The OpenAI-compatible endpoint on a real local Serve cluster with the tiny demo LLaVA.

One Serve instance for the module with two applications: ``open`` (no key, small limits) and
``secured`` (API key from an environment variable of the replicas).
"""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openai
import pytest
from PIL import Image
from ray import serve

from ray_vlm.config.loader import config_from_dict
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.model import Generation, SamplingParams
from ray_vlm.records import ASSISTANT, USER, Turn
from ray_vlm.serve.handle import VLMHandle
from ray_vlm.serve.request import RecordBatch, RecordPrompt
from ray_vlm.serve.serve_processes import SERVE_PROCESS_ENV
from ray_vlm.serve.server import free_loopback_port, image_data_url, run_server
from tests.serve.conftest import demo_image, get, image_question, png_data_url, post, serve_session

MODEL = "tiny-llava"
KEY_ENV, KEY = "RAY_VLM_TEST_API_KEY", "sk-test-123"
LIMITS = {
    "max_images": 2,
    "max_image_bytes": 60_000,
    "max_image_pixels": 160 * 160,
    "max_request_bytes": 400_000,
    "max_tokens": 64,
}


def _config(ckpt: Path, port: int, **extra) -> ServeConfig:
    args = {
        "ckpt": str(ckpt),
        "model_name": MODEL,
        "port": port,
        "batching": {"max_batch_size": 8},
        "replicas": {"num_cpus": 0.5, "max_ongoing_requests": 16},
        "limits": LIMITS,
        "defaults": {"temperature": 0.0, "max_tokens": 8},
        **extra,
    }
    return config_from_dict(ServeConfig, args, "test")


@pytest.fixture(scope="module")
def endpoint(demo_assets: Path, ray_local):
    """``(open base_url, secured base_url, image data URL)``."""
    ckpt, port = demo_assets / "models" / "llava", free_loopback_port()
    with serve_session():
        url = run_server(_config(ckpt, port, app_name="open"), blocking=False)
        secured_cfg = _config(
            ckpt, port, app_name="secured", route_prefix="/secured", auth={"api_key": KEY}
        )
        secured = run_server(secured_cfg, blocking=False)
        yield url, secured, image_data_url(demo_image(demo_assets))


def test_api_key_comes_from_the_config_or_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    assert (
        config_from_dict(ServeConfig, {"auth": {"api_key_env": KEY_ENV}}, "t").auth.resolve() == KEY
    )
    assert config_from_dict(ServeConfig, {"auth": {"api_key": "k2"}}, "t").auth.resolve() == "k2"
    monkeypatch.delenv(KEY_ENV)
    assert (
        config_from_dict(ServeConfig, {"auth": {"api_key_env": KEY_ENV}}, "t").auth.resolve() == ""
    )


@pytest.fixture
def good_request_after(endpoint):
    """After the test: a good request on the same endpoint must still succeed."""
    yield
    url, _, image = endpoint
    status, body = post(f"{url}/chat/completions", image_question(MODEL, image))
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] is not None


def test_health_and_models(endpoint) -> None:
    url, _, _ = endpoint
    status, health = get(url.removesuffix("/v1") + "/health")
    assert status == 200 and health["status"] == "ok" and health["context_length"] == 512
    status, models = get(f"{url}/models")
    assert status == 200 and [m["id"] for m in models["data"]] == [MODEL]
    for path in ("/docs", "/redoc", "/openapi.json"):  # FastAPI's own pages are off
        assert get(url.removesuffix("/v1") + path)[0] == 404, path


def test_openai_client_answers_an_image_question(endpoint) -> None:
    url, _, image = endpoint
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    out = client.chat.completions.create(**image_question(MODEL, image))
    assert isinstance(out.choices[0].message.content, str)
    assert out.choices[0].finish_reason in ("stop", "length")
    assert out.usage.prompt_tokens > 16  # the image's 16 patch tokens and the question
    assert 1 <= out.usage.completion_tokens <= 6
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens

    stream = client.chat.completions.create(
        **image_question(MODEL, image), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == out.choices[0].message.content  # greedy, same prompt, alone in its batch
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("length", "stop")
    assert chunks[-1].usage.total_tokens == out.usage.total_tokens


def test_multi_turn_conversation_with_system_message(endpoint) -> None:
    url, _, image = endpoint
    single = image_question(MODEL, image)
    messages = [
        {"role": "system", "content": "Answer briefly."},
        *single["messages"],
        {"role": "assistant", "content": "a red circle"},
        {"role": "user", "content": [{"type": "text", "text": "Where is it?"}]},
    ]
    status, body = post(f"{url}/chat/completions", {**single, "messages": messages})
    assert status == 200, body
    status, alone = post(f"{url}/chat/completions", single)
    assert body["usage"]["prompt_tokens"] > alone["usage"]["prompt_tokens"]


def test_text_only_question(endpoint) -> None:
    url, _, _ = endpoint
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello?"}], "max_tokens": 3}
    status, out = post(f"{url}/chat/completions", body)
    assert status == 200 and out["usage"]["completion_tokens"] <= 3


def _noise_png(size: int) -> str:
    pixels = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return png_data_url(Image.fromarray(pixels))


def _with_image_url(url: str) -> dict:
    return image_question(MODEL, url)


GOOD = image_question(MODEL, png_data_url(Image.new("RGB", (32, 32), "red")))


BAD_REQUESTS = {
    "malformed_json": (b'{"model": "tiny-llava", "messages": [', 400, None),
    "missing_messages": ({"model": MODEL}, 400, "messages"),
    "empty_messages": ({"model": MODEL, "messages": []}, 400, "messages"),
    "undecodable_base64": (_with_image_url("data:image/png;base64,@@not base64@@"), 400, None),
    "non_image_base64": (
        _with_image_url("data:image/png;base64," + base64.b64encode(b"hello world").decode()),
        400,
        "invalid_image",
    ),
    "image_over_byte_limit": (_with_image_url(_noise_png(200)), 400, "image_too_large"),
    "image_over_pixel_limit": (
        _with_image_url(png_data_url(Image.new("RGB", (400, 400)))),
        400,
        "image_too_large",
    ),
    "server_local_file": (_with_image_url("file:///etc/passwd"), 400, "invalid_image_url"),
    "plain_path": (_with_image_url("/etc/passwd"), 400, "invalid_image_url"),
    "remote_url": (_with_image_url("http://127.0.0.1:1/x.png"), 400, "invalid_image_url"),
    "absurd_max_tokens": ({**GOOD, "max_tokens": 10**9}, 400, "max_tokens"),
    "zero_max_tokens": ({**GOOD, "max_tokens": 0}, 400, "max_tokens"),
    "bad_temperature": ({**GOOD, "temperature": "hot"}, 400, "temperature"),
    "unsupported_parameter": ({**GOOD, "logprobs": True}, 400, "logprobs"),
    "unknown_model": ({**GOOD, "model": "gpt-9"}, 404, "model_not_found"),
    "ends_with_assistant": (
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        },
        400,
        None,
    ),
    "body_over_limit": (b"x" * 500_000, 413, "request_too_large"),
}


@pytest.mark.usefixtures("good_request_after")
@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_a_clean_4xx(endpoint, case: str) -> None:
    url, _, _ = endpoint
    body, status, code = BAD_REQUESTS[case]
    got, error = post(f"{url}/chat/completions", body)
    assert got == status, error
    assert set(error["error"]) == {"message", "type", "param", "code"} and error["error"]["message"]
    if code is not None:
        assert error["error"]["code"] == code or error["error"]["param"] == code, error


def test_a_request_whose_generation_fails_fails_alone_in_its_batch(endpoint) -> None:
    """Sent together (one dynamic batch): a temperature so small that sampling divides by ~0
    makes ``model.generate`` raise for that request; it alone gets a 500, the others answers."""
    url, _, image = endpoint
    good = image_question(MODEL, image)
    bodies = [good] * 4 + [{**good, "temperature": 1e-45}]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: post(f"{url}/chat/completions", body), bodies))
    assert [status for status, _ in answers] == [200] * 4 + [500], answers
    error = answers[-1][1]["error"]
    assert error["type"] == "server_error" and "probability tensor" in error["message"]


@pytest.mark.usefixtures("good_request_after")
def test_too_many_images(endpoint) -> None:
    url, _, image = endpoint
    body = image_question(MODEL, image)
    body["messages"][0]["content"] = [body["messages"][0]["content"][0]] * 3 + [
        {"type": "text", "text": "Compare."}
    ]
    status, error = post(f"{url}/chat/completions", body)
    assert status == 400 and error["error"]["code"] == "too_many_images"


@pytest.mark.usefixtures("good_request_after")
def test_prompt_over_the_context(endpoint) -> None:
    url, _, image = endpoint
    body = image_question(MODEL, image, question="word " * 700)
    status, error = post(f"{url}/chat/completions", body)
    assert status == 400 and error["error"]["code"] == "context_length_exceeded", error


@pytest.mark.usefixtures("good_request_after")
def test_openai_client_sees_bad_input_as_bad_request(endpoint) -> None:
    url, _, _ = endpoint
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(**{**GOOD, "max_tokens": 10**6})


def test_api_key_is_enforced_when_set(endpoint) -> None:
    _, secured, image = endpoint
    body = image_question(MODEL, image)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        status, error = post(f"{secured}/chat/completions", body, headers)
        assert status == 401 and error["error"]["code"] == "invalid_api_key"
    assert get(f"{secured}/models")[0] == 401
    assert get(secured.removesuffix("/v1") + "/health")[0] == 200  # probes need no key
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=secured, api_key="wrong", max_retries=0).models.list()
    client = openai.OpenAI(base_url=secured, api_key=KEY, max_retries=0)
    assert client.chat.completions.create(**body).usage.completion_tokens >= 1


def test_record_batches_go_whole_and_are_answered_record_by_record(
    endpoint, demo_assets: Path, tmp_path: Path
) -> None:
    """A batch evaluation's batch reaches one replica as one call; records whose image does not
    decode or whose prompt is too long get their own refusal, the others are answered."""
    image = str(demo_image(demo_assets))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    conversation = (Turn(USER, "Describe the image."), Turn(ASSISTANT, "a"), Turn(USER, "More?"))
    records = [
        RecordPrompt((image,), (Turn(USER, "Describe the image."),)),
        RecordPrompt((str(tmp_path / "broken.png"),), (Turn(USER, "Describe the image."),)),
        RecordPrompt((image,), (Turn(USER, "word " * 700),)),
        RecordPrompt((str(tmp_path / "missing.png"),), (Turn(USER, "What shape is it?"),)),
        RecordPrompt((image,), conversation),
        RecordPrompt((), (Turn(USER, "Hi"),)),
    ]
    vlm = VLMHandle.connect("open", retries=1)
    out = vlm.submit_records(RecordBatch(tuple(records), SamplingParams(max_new_tokens=4))).result()
    answered = [i for i, r in enumerate(out) if isinstance(r, Generation)]
    assert answered == [0, 4, 5]
    assert all(1 <= out[i].completion_tokens <= 4 for i in answered)
    assert (out[1].code, out[3].code, out[2].code) == ("image", "image", "context_length_exceeded")
    assert "cannot be decoded" in out[1].reason and "does not exist" in out[3].reason


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class _EnvProbe:
    def __call__(self) -> dict[str, str | None]:
        return {name: os.environ.get(name) for name in SERVE_PROCESS_ENV}


def test_replicas_run_with_the_serve_process_settings(endpoint) -> None:
    """``run_server`` started Serve's controller with ``SERVE_PROCESS_ENV``; the replicas it
    creates inherit it."""
    handle = serve.run(_EnvProbe.bind(), name="env_probe", route_prefix=None)
    try:
        assert handle.remote().result(timeout_s=60) == SERVE_PROCESS_ENV
    finally:
        serve.delete("env_probe")
