"""The Serve application: an HTTP front (``OpenAIIngress``) over generation replicas
(``VLMGenerator``), both sized from one ``ServeConfig``.

``build_app`` is the ``import_path`` of Serve config files (``configs/serve/*.yaml``)::

    applications:
      - name: ray_vlm
        route_prefix: /
        import_path: ray_vlm.serve.app:build_app
        args: {ckpt: demo_out/assets/models/llava, batching: {max_batch_size: 16}}
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ray.serve import Application

from ray_vlm.config.loader import ConfigError, config_from_dict
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.preprocess.resources import with_replica_gpus
from ray_vlm.serve.generator import VLMGenerator
from ray_vlm.serve.ingress import OpenAIIngress
from ray_vlm.serve.serve_processes import serve_http_host

FILE_OWNED_KEYS = ("app_name", "route_prefix", "host", "port")
"""Set by the Serve config file itself (``name``, ``route_prefix``, ``http_options``), not args."""


def generator_options(cfg: ServeConfig) -> dict[str, Any]:
    """``Deployment.options`` of the generation replicas: resources, queue sizes, scaling."""
    r = cfg.replicas
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus},
        "max_ongoing_requests": r.max_ongoing_requests,
        "max_queued_requests": r.max_queued_requests,
    }
    if r.autoscaling:
        options["autoscaling_config"] = {
            "min_replicas": r.min_replicas,
            "max_replicas": r.max_replicas,
            "target_ongoing_requests": r.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = r.min_replicas
    return options


def ingress_options(cfg: ServeConfig) -> dict[str, Any]:
    """The HTTP front accepts every request the generation replicas could hold at once."""
    r = cfg.replicas
    return {
        "num_replicas": r.ingress_replicas,
        "ray_actor_options": {"num_cpus": r.ingress_num_cpus},
        "max_ongoing_requests": r.max_replicas * r.max_ongoing_requests,
    }


def _absolute(cfg: ServeConfig) -> ServeConfig:
    """A local ``ckpt`` path made absolute (replicas may run in other working directories)."""
    if Path(cfg.ckpt).exists():
        return dataclasses.replace(cfg, ckpt=str(Path(cfg.ckpt).resolve()))
    return cfg


def build_generator_application(cfg: ServeConfig) -> Application:
    """Generation replicas alone, for in-cluster callers (``VLMHandle``; batch evaluation);
    ``replicas.num_gpus: auto`` decided on the connected cluster."""
    cfg = with_replica_gpus(_absolute(cfg))
    return VLMGenerator.options(**generator_options(cfg)).bind(cfg)


def build_application(cfg: ServeConfig) -> Application:
    """The bound application for ``serve.run``: the HTTP front over the generation replicas."""
    cfg = _absolute(cfg)
    return OpenAIIngress.options(**ingress_options(cfg)).bind(build_generator_application(cfg), cfg)


def config_from_args(args: dict[str, Any], origin: str = "application args") -> ServeConfig:
    """``ServeConfig`` from a Serve config file's ``args`` (unknown or file-owned key: error)."""
    owned = sorted(set(args) & set(FILE_OWNED_KEYS))
    if owned:
        raise ConfigError(
            f"{origin}: {', '.join(owned)} belong to the Serve config file (application name, "
            "route_prefix, http_options), not to args"
        )
    return config_from_dict(ServeConfig, args, origin)


def build_app(args: dict[str, Any]) -> Application:
    """Application builder for Serve config files and ``serve run ray_vlm.serve.app:build_app``.

    ``ConfigError`` (the application fails to deploy, saying why) when Serve's HTTP proxies bind
    a non-loopback address (``http_options.host``) and no API key is set
    (``AuthConfig.check_exposure``)."""
    cfg = config_from_args(args)
    cfg.auth.check_exposure(serve_http_host())
    return build_application(cfg)
