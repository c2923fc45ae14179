"""What evaluations share: one Ray connection, one Serve start, generation replicas per model,
one ``Dispatcher`` sending them records.

``EvalSession`` starts Serve once and one application per model (generation replicas only, no
HTTP route) the first time an evaluation asks for that model, and keeps it: ``--compare`` and
further evaluations of the same model (the demo scores captions then VQA) reuse its replicas.
When the cluster cannot hold another model's replicas beside the ones kept, the kept ones are
deleted first. ``close()`` deletes what the session started, and shuts Serve down when the
session started it and no other application runs::

    with EvalSession() as session:
        evaluate(caption_cfg, session)
        evaluate(vqa_cfg, session)
"""

from __future__ import annotations

import dataclasses
import time

import ray
from ray import serve
from ray.actor import ActorHandle

from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.evaluate.predict import Dispatcher
from ray_vlm.preprocess.resources import (
    Demand,
    ResourceError,
    check_fits,
    serve_demand,
    with_replica_gpus,
)
from ray_vlm.serve import build_generator_application, serve_running, start_serve, stop_serve


@dataclasses.dataclass
class _App:
    name: str
    demand: Demand


class EvalSession:
    def __init__(self) -> None:
        self._apps: dict[str, _App] = {}  # repr(serve config) -> its running application
        self._started_serve = False
        self._dispatcher: ActorHandle | None = None
        self._started_apps = 0  # names stay unique: the dispatcher keeps a handle per name

    def __enter__(self) -> EvalSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dispatcher(self) -> ActorHandle:
        """The session's ``Dispatcher`` (started on first use)."""
        if self._dispatcher is None:
            self._dispatcher = Dispatcher.remote()
        return self._dispatcher

    def application(self, cfg: ServeConfig, model_dir: str) -> tuple[str, float]:
        """``(application name, seconds spent starting it)`` for replicas of ``model_dir``
        configured by ``cfg``; 0 s when the session already runs them. The dispatcher starts
        while the replicas load."""
        serve_cfg = dataclasses.replace(cfg, ckpt=model_dir)
        key = repr(serve_cfg)
        if key in self._apps:
            return self._apps[key].name, 0.0
        start = time.perf_counter()
        self.dispatcher  # noqa: B018 - its process starts beside the replicas
        serve_cfg = with_replica_gpus(serve_cfg)
        demand = serve_demand(serve_cfg, http=False)
        try:
            check_fits(sum((a.demand for a in self._apps.values()), demand))
        except ResourceError:
            self._delete_all()
            check_fits(demand)  # the user's error when the model alone does not fit
        if not self._started_serve and not serve_running():
            start_serve()
            self._started_serve = True
        name = f"{cfg.app_name}_{self._started_apps}" if self._started_apps else cfg.app_name
        serve.run(build_generator_application(serve_cfg), name=name, route_prefix=None)
        self._started_apps += 1
        self._apps[key] = _App(name, demand)
        return name, time.perf_counter() - start

    def close(self) -> None:
        if self._dispatcher is not None:
            # First: its Serve handle keeps a call open on Serve's controller, which would fail
            # on the console when Serve stops.
            ray.kill(self._dispatcher)
            self._dispatcher = None
        self._delete_all()
        if self._started_serve and not serve.status().applications:
            stop_serve()  # Serve was started for these evaluations only: leave no HTTP proxy
        self._started_serve = False

    def _delete_all(self) -> None:
        for app in self._apps.values():
            serve.delete(app.name)
        self._apps.clear()
