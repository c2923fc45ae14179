"""Every YAML under configs/ loads into its dataclass (a renamed field breaks this test)."""

from __future__ import annotations

import pytest
import yaml

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.demo.assets import demo_registry
from ray_vlm.records import load_registry
from ray_vlm.serve import check_serve_config
from ray_vlm.serve.serve_processes import CONTROLLER_OPTIONS
from tests.conftest import REPO

SCHEMAS = {
    "finetune": lambda path: load_config(FinetuneConfig, [f"config={path}"]),
    "serve": check_serve_config,
}
YAMLS = sorted((REPO / "configs").rglob("*.yaml"))


def test_there_are_configs() -> None:
    assert YAMLS


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_loads_into_its_schema(path) -> None:
    if path.name == "datasets.yaml":
        assert load_registry(path)
        return
    folder = path.relative_to(REPO / "configs").parts[0]
    assert folder in SCHEMAS, f"{path}: no schema registered for configs/{folder}/"
    SCHEMAS[folder](path)


def test_shipped_registry_lists_the_demo_assets() -> None:
    shipped = load_registry(REPO / "configs" / "datasets.yaml")
    expected = demo_registry("demo_out/assets")
    assert {n: (s.annotation, s.root_dir) for n, s in shipped.items() if n in expected} == {
        n: (e["annotation"], e["root_dir"]) for n, e in expected.items()
    }


@pytest.mark.parametrize(
    "path", sorted((REPO / "configs" / "serve").glob("*.yaml")), ids=lambda p: p.name
)
def test_serve_configs_start_serve_like_ray_vlm_serve(path) -> None:
    """``serve run``/``serve deploy`` of a shipped file gives Serve's processes the settings
    ``ray-vlm serve`` starts them with."""
    assert yaml.safe_load(path.read_text())["controller_options"] == CONTROLLER_OPTIONS


def test_gpu_configs_fit_their_gpus() -> None:
    """The settings the memory estimates in the GPU configs' comments assume."""
    configs = REPO / "configs"
    plm = load_config(FinetuneConfig, [f"config={configs / 'finetune/plm_8b_radiology.yaml'}"])
    assert plm.model.processor_kwargs == {"max_num_tiles": 1, "vision_input_type": "vanilla"}
    assert plm.model.gradient_checkpointing and plm.distributed.precision == "bf16"
    assert plm.distributed.zero_stage == 3
    pali = load_config(
        FinetuneConfig, [f"config={configs / 'finetune/paligemma_prescription.yaml'}"]
    )
    assert pali.distributed.num_workers == 1 and pali.distributed.zero_stage < 3
    assert pali.model.gradient_checkpointing
    (gpu,) = check_serve_config(configs / "serve/gpu.yaml").values()
    assert gpu.replicas.num_gpus == 1 and gpu.processor_kwargs == plm.model.processor_kwargs
    for cfg in (plm, pali):
        base = yaml.safe_load((REPO / cfg.distributed.deepspeed_config).read_text())
        assert base["zero_optimization"]["stage"] == cfg.distributed.zero_stage
    zero3 = yaml.safe_load((REPO / plm.distributed.deepspeed_config).read_text())
    assert plm.distributed.deepspeed_config.endswith("zero3_production.json")
    assert zero3["zero_optimization"]["overlap_comm"]  # comms overlap the backward pass
    assert (
        zero3["zero_optimization"]["stage3_param_persistence_threshold"] == 100_000
    )  # DeepSpeed's
    for name in ("finetune/plm_8b_radiology", "finetune/paligemma_prescription", "serve/gpu"):
        assert "Memory per" in (configs / f"{name}.yaml").read_text()


def test_gpu_configs_and_cluster_yaml_name_one_storage_root(monkeypatch) -> None:
    """``cluster.yaml`` names the storage root once (``RAY_VLM_STORAGE`` for every Ray process);
    the GPU fine-tunes write under it and the GPU Serve config serves the PLM run from there."""
    cluster = yaml.safe_load((REPO / "cluster.yaml").read_text())
    named = [o for o in cluster["docker"]["run_options"] if "RAY_VLM_STORAGE=" in o]
    assert len(named) == 1 and named[0].startswith("-e RAY_VLM_STORAGE=s3://")
    monkeypatch.setenv("RAY_VLM_STORAGE", "s3://bucket/root")
    configs = REPO / "configs"
    plm = load_config(FinetuneConfig, [f"config={configs / 'finetune/plm_8b_radiology.yaml'}"])
    pali = load_config(
        FinetuneConfig, [f"config={configs / 'finetune/paligemma_prescription.yaml'}"]
    )
    (gpu,) = check_serve_config(configs / "serve/gpu.yaml").values()
    assert plm.dump_dir == gpu.ckpt == "s3://bucket/root/runs/plm_radiology"
    assert pali.dump_dir == "s3://bucket/root/runs/paligemma_prescription"
    monkeypatch.delenv("RAY_VLM_STORAGE")  # one machine: under the working directory
    local = load_config(FinetuneConfig, [f"config={configs / 'finetune/plm_8b_radiology.yaml'}"])
    assert local.dump_dir == "checkpoints/runs/plm_radiology"
