"""The HTTP front: OpenAI-compatible routes, validation, auth, timeouts (no model here).

Routes (under the application's route prefix):
- ``POST /v1/chat/completions``: text + ``image_url`` (base64 data URL) messages; ``stream``;
- ``GET /v1/models``: the one served model;
- ``GET /health``: 200 once a generation replica answers, else 503 (no API key needed).
FastAPI's ``/docs``, ``/redoc`` and ``/openapi.json`` are off (404).

Every refusal is an OpenAI-style JSON error (``ray_vlm.serve.errors``); nothing a client sends
can raise out of a replica: bad input is a 4xx, an internal failure a 5xx, and the replica stays.
Log records of the HTTP front and the generation replicas have credentials masked
(``config.secrets``).
"""

# No `from __future__ import annotations`: FastAPI must see the route annotations as classes.
import asyncio
import hmac
import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException

from ray_vlm.config.secrets import install_log_masking
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.model import Generation
from ray_vlm.serve.conversation import to_generation_request
from ray_vlm.serve.errors import RequestError, error_body
from ray_vlm.serve.handle import ReplicaFailedError, VLMHandle
from ray_vlm.serve.openai_schema import ChatCompletionRequest, ModelCard, ModelList
from ray_vlm.serve.request import GenerationRequest
from ray_vlm.serve.responses import ResponseIds, completion, stream_events
from ray_vlm.serve.serve_processes import serve_http_host

HEALTH_TIMEOUT_S = 10.0
INLINE_DECODE_BYTES = 64 * 1024
"""Bodies up to this size have their images decoded on the event loop (well under a millisecond);
larger ones in a worker thread, so a big image never stalls the other requests."""
logger = logging.getLogger("ray.serve")
api = FastAPI(
    title="ray_vlm",
    description="OpenAI-compatible chat completions for a VLM",
    docs_url=None,  # no /docs, /redoc or /openapi.json: the routes above are the whole surface
    redoc_url=None,
    openapi_url=None,
)


@api.exception_handler(RequestError)
async def _request_error(_: Request, err: RequestError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


@api.exception_handler(HTTPException)
async def _http_error(_: Request, err: HTTPException) -> JSONResponse:
    return JSONResponse(error_body(str(err.detail), "invalid_request_error"), err.status_code)


@api.exception_handler(Exception)
async def _internal_error(_: Request, err: Exception) -> JSONResponse:
    logger.exception("internal error answering a request")
    return JSONResponse(error_body(f"internal error: {err}", "server_error"), 500)


def parse_request(body: bytes) -> ChatCompletionRequest:
    """The JSON body as a ``ChatCompletionRequest``; 400 naming the first bad fields."""
    try:
        return ChatCompletionRequest.model_validate_json(body)
    except ValidationError as err:
        problems = err.errors(include_url=False)
        if problems[0]["type"] == "json_invalid":
            raise RequestError(
                400, f"request body is not valid JSON: {problems[0]['msg']}"
            ) from None
        params = [".".join(str(p) for p in e["loc"]) for e in problems]
        msgs = [
            "not supported by this server" if e["type"] == "extra_forbidden" else e["msg"]
            for e in problems
        ]
        text = "; ".join(f"{p}: {m}" for p, m in list(zip(params, msgs, strict=True))[:3])
        raise RequestError(400, f"invalid request: {text}", params[0]) from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    too_large = RequestError(413, f"request body is over {limit} bytes", None, "request_too_large")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


@serve.deployment
@serve.ingress(api)
class OpenAIIngress:
    def __init__(self, generator: DeploymentHandle, cfg: ServeConfig) -> None:
        install_log_masking()
        self.cfg = cfg
        self.vlm = VLMHandle(generator, cfg.replica_failure_retries)
        self.model = cfg.served_model_name
        self.api_key = cfg.auth.resolve()
        # The key is read here, where requests arrive: a driver that had one while these
        # processes have none (RAY_VLM_API_KEY set only where the command ran) must not leave
        # an address other machines reach open. The front refuses to start instead.
        cfg.auth.check_exposure(serve_http_host())
        self.created = int(time.time())

    def _authorize(self, request: Request) -> None:
        if not self.api_key:
            return
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {self.api_key}".encode()):
            raise RequestError(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>'",
                None,
                "invalid_api_key",
            )

    @api.get("/health")
    async def health(self) -> dict:
        try:
            context = await asyncio.wait_for(self.vlm.context_length_tokens(), HEALTH_TIMEOUT_S)
        except Exception as err:
            raise RequestError(
                503, f"no generation replica answers: {err}", None, None, "server_error"
            ) from None
        return {"status": "ok", "model": self.model, "context_length": context}

    @api.get("/v1/models")
    async def models(self, request: Request) -> ModelList:
        self._authorize(request)
        return ModelList(data=[ModelCard(id=self.model, created=self.created)])

    @api.post("/v1/chat/completions")
    async def chat_completions(self, request: Request):
        self._authorize(request)
        raw = await read_body(request, self.cfg.limits.max_request_bytes)
        body = parse_request(raw)
        if body.model != self.model:
            raise RequestError(
                404,
                f"model '{body.model}' is not served here; use '{self.model}'",
                "model",
                "model_not_found",
            )
        if len(raw) <= INLINE_DECODE_BYTES:
            gen_request = to_generation_request(body, self.cfg)
        else:
            gen_request = await asyncio.to_thread(to_generation_request, body, self.cfg)
        generation = await self._generate(gen_request)
        ids = ResponseIds(self.model)
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return StreamingResponse(
                stream_events(generation, ids, include_usage), media_type="text/event-stream"
            )
        return completion(generation, ids)

    async def _generate(self, request: GenerationRequest) -> Generation:
        """The answer within ``request_timeout_s``; replica failures and overload as 5xx."""
        timeout = self.cfg.request_timeout_s
        try:
            return await asyncio.wait_for(self.vlm.generate_async(request), timeout)
        except asyncio.TimeoutError:
            raise RequestError(
                504, f"no answer within {timeout} s", None, "timeout", "server_error"
            ) from None
        except BackPressureError as err:
            raise RequestError(
                503, f"server overloaded, retry later: {err}", None, None, "server_error"
            ) from None
        except ReplicaFailedError as err:
            raise RequestError(503, str(err), None, None, "server_error") from None
