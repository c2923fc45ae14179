"""Every setting of the Ray Serve endpoint (``ray-vlm serve``, ``configs/serve/*.yaml``) with its
default. Each field's docstring is its documentation.

The same ``ServeConfig`` is read from three places: ``ray-vlm serve --ckpt DIR key=value ...``, the
``args:`` of an application in a Ray Serve config file (``serve run configs/serve/demo.yaml``), and
Python (``ServeConfig(ckpt=...)``). Unknown keys are errors everywhere.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any

from ray_vlm.config.loader import ConfigError

DTYPES = ("auto", "float32", "bfloat16", "float16")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"key '{key}': must be > 0, got {value}")


@dataclass
class BatchingConfig:
    max_batch_size: int = 16
    """Most requests one replica runs through ``model.generate`` together. 1 turns batching off."""
    batch_wait_timeout_s: float = 0.02
    """How long the first request of a batch waits for others to join it."""

    def __post_init__(self) -> None:
        _positive("batching.max_batch_size", self.max_batch_size)
        if self.batch_wait_timeout_s < 0:
            raise ConfigError("key 'batching.batch_wait_timeout_s': must be >= 0")


@dataclass
class ReplicaConfig:
    min_replicas: int = 1
    """Fewest generation replicas (each holds one copy of the model)."""
    max_replicas: int = 1
    """Most generation replicas. Equal to ``min_replicas``: a fixed count, no autoscaling."""
    target_ongoing_requests: float = 16.0
    """Autoscaling aims at this many in-flight requests per replica (about one full batch)."""
    max_ongoing_requests: int = 64
    """Requests a replica accepts at once (queued for its batches); >= ``max_batch_size``."""
    max_queued_requests: int = -1
    """Requests waiting for a replica before new ones get HTTP 503; -1 is no limit."""
    num_cpus: float = 1.0
    """CPUs reserved per generation replica (also its torch thread count, at least 1)."""
    num_gpus: float | int | str = "auto"
    """GPUs per generation replica: ``auto`` is one when the Ray cluster has GPUs or can scale to
    them, else none (the CPU), said in the log when Serve starts; or a number (fractions, 0.5,
    pack several replicas on one GPU)."""
    ingress_replicas: int = 1
    """Replicas of the HTTP front (validation, image decoding; no model)."""
    ingress_num_cpus: float = 0.25
    """CPUs reserved per HTTP front replica."""

    def __post_init__(self) -> None:
        _positive("replicas.min_replicas", self.min_replicas)
        if self.max_replicas < self.min_replicas:
            raise ConfigError("key 'replicas.max_replicas': must be >= replicas.min_replicas")
        _positive("replicas.target_ongoing_requests", self.target_ongoing_requests)
        _positive("replicas.ingress_replicas", self.ingress_replicas)
        if self.num_gpus != "auto" and (isinstance(self.num_gpus, str) or self.num_gpus < 0):
            raise ConfigError(f"key 'replicas.num_gpus': '{self.num_gpus}': auto or a number >= 0")
        if self.num_cpus < 0 or self.ingress_num_cpus < 0:
            raise ConfigError("keys 'replicas.*num_cpus': must be >= 0")

    @property
    def autoscaling(self) -> bool:
        return self.max_replicas > self.min_replicas


@dataclass
class LimitsConfig:
    max_images: int = 4
    """Most images in one request (over all its messages)."""
    max_image_bytes: int = 10 * 2**20
    """Largest image, in bytes after base64 decoding."""
    max_image_pixels: int = 4096 * 4096
    """Largest image in pixels (width x height), checked before decoding (decompression bombs)."""
    max_request_bytes: int = 64 * 2**20
    """Largest HTTP request body; larger ones get HTTP 413 before being parsed."""
    max_tokens: int = 1024
    """Largest ``max_tokens`` a request may ask for (prompt + answer must also fit the context)."""

    def __post_init__(self) -> None:
        for key in ("max_images", "max_image_bytes", "max_image_pixels", "max_request_bytes"):
            _positive(f"limits.{key}", getattr(self, key))
        _positive("limits.max_tokens", self.max_tokens)


@dataclass
class SamplingDefaults:
    """What a request gets for the sampling fields it leaves out (OpenAI's own defaults)."""

    max_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, ``127.0.0.0/8``,
    ``::1``); any other name or address (``0.0.0.0``, a hostname) counts as reachable by others."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class AuthConfig:
    api_key: str = ""
    """Bearer key every request must send (``Authorization: Bearer KEY``); empty: see api_key_env.
    Masked (``***``) in every config ray_vlm writes or logs: give it where the server starts."""
    api_key_env: str = "RAY_VLM_API_KEY"
    """Environment variable (on the replicas) holding the key when ``api_key`` is empty.
    Neither set: no authentication, which only a loopback ``host`` allows by default."""
    allow_unauthenticated: bool = False
    """Serve on an address other machines reach (``host: 0.0.0.0``, a Serve config file's
    ``http_options.host``) without an API key. Off: such a server refuses to start until
    ``auth.api_key`` or the ``api_key_env`` variable is set."""

    def resolve(self) -> str:
        """The key requests must send, read where this runs (the HTTP front); "" for none."""
        return self.api_key or os.environ.get(self.api_key_env, "")

    def check_exposure(self, host: str) -> None:
        """``ConfigError`` when the HTTP proxy binds ``host``, a non-loopback address, and
        requests would need no key (unless ``allow_unauthenticated``)."""
        if is_loopback(host) or self.allow_unauthenticated or self.resolve():
            return
        raise ConfigError(
            f"key 'host': {host} is reachable from other machines and no API key is set: set "
            f"auth.api_key or the environment variable {self.api_key_env} (or "
            "auth.allow_unauthenticated=true to serve without one)"
        )


@dataclass
class ServeConfig:
    ckpt: str = "demo_out/assets/models/llava"
    """Model: an exported Hugging Face directory, a checkpoint step dir, a run's ``dump_dir``
    (its latest checkpoint, consolidated on first use) or a hub id."""
    model_name: str = ""
    """Model id in ``/v1/models`` and responses; empty: the checkpoint folder's name."""
    dtype: str = "auto"
    """Weights' dtype: ``auto`` is bfloat16 on GPU, float32 on CPU."""
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    """Settings overriding the saved ones of the model's processor, e.g. Perception LM's
    ``{max_num_tiles: 1, vision_input_type: vanilla}`` for a hub id. A fine-tuned export or
    checkpoint already carries the settings it was trained with. An unknown key is an error."""
    app_name: str = "ray_vlm"
    """Serve application name (``serve status``, handles)."""
    route_prefix: str = "/"
    """HTTP path the application is mounted under."""
    host: str = "127.0.0.1"
    """HTTP bind address for ``ray-vlm serve`` (``0.0.0.0`` to listen on every interface).
    Serve config files set it in ``http_options`` instead."""
    port: int = 8000
    """HTTP port for ``ray-vlm serve``; Serve config files set it in ``http_options``."""
    request_timeout_s: float = 120.0
    """A request not answered within this many seconds gets HTTP 504."""
    replica_failure_retries: int = 2
    """Times a request is re-sent when its generation replica dies under it."""
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    replicas: ReplicaConfig = field(default_factory=ReplicaConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    defaults: SamplingDefaults = field(default_factory=SamplingDefaults)
    auth: AuthConfig = field(default_factory=AuthConfig)

    def __post_init__(self) -> None:
        if not self.ckpt:
            raise ConfigError("key 'ckpt': give the model directory to serve")
        if self.dtype not in DTYPES:
            raise ConfigError(f"key 'dtype': '{self.dtype}' is not one of {', '.join(DTYPES)}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"key 'port': {self.port} is not a TCP port")
        _positive("request_timeout_s", self.request_timeout_s)
        if self.replicas.max_ongoing_requests < self.batching.max_batch_size:
            raise ConfigError(
                "key 'replicas.max_ongoing_requests': must be >= batching.max_batch_size, "
                "or batches never fill"
            )
        if self.defaults.max_tokens > self.limits.max_tokens:
            raise ConfigError("key 'defaults.max_tokens': must be <= limits.max_tokens")

    @property
    def served_model_name(self) -> str:
        return self.model_name or self.ckpt.rstrip("/").rsplit("/", 1)[-1]
