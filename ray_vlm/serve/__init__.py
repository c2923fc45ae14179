"""Stage 6 of the flow: a Ray Serve application answering OpenAI-style chat completions.

``build_application(ServeConfig)`` / ``build_app(args)`` (Serve config files), ``run_server``
(``ray-vlm serve``), ``start_serve``/``stop_serve`` (Serve with ray_vlm's process settings),
``build_generator_application`` and ``VLMHandle`` (in-cluster callers, no HTTP), ``check_serve_config``.
"""

from ray_vlm.serve.app import build_app, build_application, build_generator_application
from ray_vlm.serve.config_file import check_serve_config
from ray_vlm.serve.handle import VLMHandle
from ray_vlm.serve.serve_processes import serve_running, start_serve, stop_serve
from ray_vlm.serve.server import run_server, serve_and_ask

__all__ = [
    "VLMHandle",
    "build_app",
    "build_application",
    "build_generator_application",
    "check_serve_config",
    "run_server",
    "serve_and_ask",
    "serve_running",
    "start_serve",
    "stop_serve",
]
