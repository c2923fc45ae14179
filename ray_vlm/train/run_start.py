"""What a fine-tune does before its workers start, whatever runs them (Ray Train or ``torchrun``).

``start_run(cfg)`` resolves relative paths by ``config.paths``' rule and makes them absolute
(workers may run elsewhere, the MLflow store too), checks that the trackers it asks for are
installed, what the run must reach (``preflight.check_finetune``: ``UserError`` naming the key)
and that the model's inputs reach it as its processor makes them (``preprocess.contract``:
``LayoutError``), writes the resolved
config to ``<dump_dir>/config.yaml``, reads the newest checkpoint's state and, unless that
checkpoint already finished the run, plans the data (``data_plan.data_start``) and the
validation records (``eval.datamix``, every record once: ``stream_plan.plan_each_once``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ray_vlm.config import CONFIG_FILE, FinetuneConfig, config_to_yaml
from ray_vlm.preflight import check_finetune
from ray_vlm.preprocess.contract import check_model_inputs
from ray_vlm.preprocess.stream_plan import plan_each_once
from ray_vlm.records import DatamixEntry, DatasetSpec
from ray_vlm.storage import Location
from ray_vlm.train.data_plan import DataStart, data_start
from ray_vlm.train.run_state import TrainState, latest_state
from ray_vlm.train.tracking import check_tracking, resolved_tracking_uri


@dataclass(frozen=True)
class RunStart:
    cfg: FinetuneConfig
    """The resolved config (local paths absolute, ``dump_dir`` a URI or absolute path)."""
    sources: list[tuple[DatamixEntry, DatasetSpec]]
    """Every source the run reads: ``data.datamix``'s, then ``eval.datamix``'s."""
    state: TrainState | None
    """The newest checkpoint's state (``None``: a fresh run)."""
    data: DataStart | None
    """Where the workers' data starts; ``None`` when the checkpoint finished the run."""


def resolved(cfg: FinetuneConfig) -> FinetuneConfig:
    """``cfg`` with its relative paths resolved (``FinetuneConfig.resolve_paths``; a config built
    in code has not been through ``load_config``) and ``dump_dir`` a URI or absolute path."""
    cfg = cfg.resolve_paths()
    return replace(
        cfg,
        dump_dir=Location.of(cfg.dump_dir).uri,
        logging=replace(
            cfg.logging, mlflow_tracking_uri=resolved_tracking_uri(cfg.logging.mlflow_tracking_uri)
        ),
    )


def start_run(cfg: FinetuneConfig) -> RunStart:
    cfg = resolved(cfg)
    check_tracking(cfg.logging)
    sources, validation = check_finetune(cfg)
    check_model_inputs(cfg, [spec for _, spec in sources])
    dump_dir = Location.of(cfg.dump_dir)
    (dump_dir / CONFIG_FILE).write_text(config_to_yaml(cfg))
    state = latest_state(dump_dir)
    finished = state is not None and state.step >= cfg.steps
    data = None
    if not finished:
        data = replace(
            data_start(cfg, sources, state), validation=tuple(plan_each_once(validation))
        )
    return RunStart(cfg, sources + validation, state, data)
