"""The shape-faithful stand-ins against the shipped GPU configs' data and model settings.

``perception_lm_8b_standin`` has facebook/Perception-LM-8B's processor (448-px tiles, thumb+tile,
up to 36 tiles, 256 tokens a tile) and ``paligemma2_224_standin`` google/paligemma2-3b-pt-224's
(224 px, 256 image tokens); both towers take those shapes, so token counts are the real ones.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.export.finetune import train_and_export
from ray_vlm.export.generate_one import generate_one
from ray_vlm.model import SamplingParams, load_model
from ray_vlm.preprocess.batching import collate
from ray_vlm.preprocess.check_data import check_data
from ray_vlm.preprocess.encode import Encoder
from ray_vlm.preprocess.layouts import LayoutError
from ray_vlm.preprocess.processor import load_processor
from ray_vlm.records import ASSISTANT, USER, Record, Turn
from ray_vlm.train.run_state import HF_DIR
from tests.conftest import REPO

PLM_CONFIG = REPO / "configs/finetune/plm_8b_radiology.yaml"
PROMPT = "You are an expert radiographer. Describe accurately what you see in this image."
TOKENS_A_TILE = 256  # (448 / 14 / 2) ** 2


def radiograph(path: Path, width: int = 512, height: int = 512, seed: int = 0) -> Path:
    """A greyscale PNG with a bright, noisy oval on dark: shaped like a chest radiograph."""
    y, x = np.mgrid[0:height, 0:width]
    oval = ((x - width / 2) / (0.4 * width)) ** 2 + ((y - height / 2) / (0.45 * height)) ** 2 < 1
    noise = np.random.default_rng(seed).normal(0, 12, (height, width))
    Image.fromarray(np.clip(40 + 150 * oval + noise, 0, 255).astype(np.uint8), "L").save(path)
    return path


def radiology_registry(folder: Path, sizes: list[tuple[int, int]]) -> Path:
    """A PLM-layout ``radiology_finetune`` dataset (the PLM guide's prompt), one image a size."""
    (folder / "images").mkdir(parents=True)
    rows = []
    for i, (w, h) in enumerate(sizes):
        radiograph(folder / "images" / f"{i}.png", w, h, seed=i)
        turns = [{"from": "human", "value": PROMPT}, {"from": "gpt", "value": "chest x-ray"}]
        rows.append({"image": f"{i}.png", "conversations": turns})
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    registry = folder / "datasets.yaml"
    entry = {"annotation": "train.jsonl", "root_dir": "images"}  # beside the registry
    registry.write_text(yaml.safe_dump({"radiology_finetune": entry}))
    return registry


def plm_config(assets: Path, *overrides: str) -> FinetuneConfig:
    """``plm_8b_radiology.yaml`` pointed at the stand-in, on this machine's CPUs."""
    return load_config(
        FinetuneConfig,
        [
            f"config={PLM_CONFIG}",
            f"checkpoint.init_ckpt_path={assets / 'models/perception_lm_8b_standin'}",
            "distributed.use_gpu=false",
            "distributed.precision=auto",
            "distributed.cpus_per_worker=1",
            "data.preprocess_workers=0",  # each rank encodes its records: no actors to start
            *overrides,
        ],
    )


def _record(image: Path, answer: str = "chest x-ray") -> Record:
    return Record("r", "r.jsonl:1", (str(image),), (Turn(USER, PROMPT), Turn(ASSISTANT, answer)))


def test_plm_radiology_settings_fit_a_512px_radiograph(demo_assets: Path, tmp_path: Path):
    cfg = plm_config(demo_assets)
    assert cfg.model.processor_kwargs == {"max_num_tiles": 1, "vision_input_type": "vanilla"}
    processor = load_processor(cfg.checkpoint.init_ckpt_path, cfg.model.processor_kwargs)
    encoder = Encoder(processor, cfg.data.max_seq_len)
    ex = encoder.encode(_record(radiograph(tmp_path / "xray.png")))
    assert not ex.truncated and len(ex.input_ids) <= cfg.data.max_seq_len
    assert int((ex.input_ids == encoder.image_token_id).sum()) == TOKENS_A_TILE
    assert ex.inputs["pixel_values"].shape == (1, 3, 448, 448) and ex.num_images == 1


def test_paligemma2_standin_makes_256_image_tokens(demo_assets: Path, tmp_path: Path) -> None:
    path = str(demo_assets / "models/paligemma2_224_standin")
    encoder = Encoder(load_processor(path), max_seq_len=384)
    ex = encoder.encode(_record(radiograph(tmp_path / "rx.png", 600, 400), "aceta"))
    assert int((ex.input_ids == encoder.image_token_id).sum()) == 256
    assert ex.inputs["pixel_values"].shape == (1, 3, 224, 224)
    batch = collate([ex.row(_record(tmp_path / "rx.png"))], encoder)
    assert torch.isfinite(load_model(path)(**batch).loss)  # 256 patches for 256 image tokens


def test_the_36_tile_default_is_too_long_with_a_hint(demo_assets: Path, tmp_path: Path) -> None:
    """Any image takes 37 tiles x 256 tokens at the processor's default: ``check-data`` (and
    ``train``) refuse before Ray starts, naming the settings to change."""
    registry = radiology_registry(tmp_path, [(512, 512), (640, 480), (300, 700)])
    cfg = plm_config(demo_assets, f"data.datasets_yaml={registry}")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, processor_kwargs={}))
    with pytest.raises(
        LayoutError, match=r"^model type 'perception_lm': a record with one image"
    ) as e:
        check_data(cfg)
    for words in ("(9472) and prompt", "data.max_seq_len=3072", "model.processor_kwargs",
                  "max_num_tiles=36", "thumb+tile"):  # fmt: skip
        assert words in str(e.value)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_plm_standin_trains_on_images_of_different_tile_counts(
    demo_assets: Path, tmp_path: Path, monkeypatch
) -> None:
    """The radiology config, thumb+tile at most 2 tiles: a 512x512 image is 1+1 tiles, a 900x448
    one 1+2 (the variable-tile collate), through ZeRO-3; checkpoint and export keep the setting.
    Run from a folder that is not the repo: the config's ``configs/deepspeed/zero3.json`` is found
    in the ray_vlm checkout, the registry's relative paths beside it."""
    registry = radiology_registry(tmp_path / "data", [(512, 512), (900, 448)] * 2)
    monkeypatch.chdir(tmp_path)
    tiles = {"max_num_tiles": 2, "vision_input_type": "thumb+tile"}
    cfg = plm_config(
        demo_assets,
        f"data.datasets_yaml={registry}",
        f"dump_dir={tmp_path / 'run'}",
        *(f"model.processor_kwargs.{k}={v}" for k, v in tiles.items()),
        "distributed.num_workers=1",
        "steps=2",
        "batch_size=2",
        "data.group_by_length=false",
        "data.max_seq_len=1024",
        "checkpoint.dump.every=0",
        "logging.freq=1",
    )
    out = train_and_export(cfg)
    assert out.result.step == 2 and all(0 < m["loss"] < 1e3 for m in out.result.metrics)
    for folder in (out.result.checkpoint / HF_DIR, out.hf_dir):
        saved = load_processor(str(folder)).image_processor
        assert (saved.max_num_tiles, saved.vision_input_type) == (2, "thumb+tile")
    base = load_file(demo_assets / "models/perception_lm_8b_standin/model.safetensors")
    trained = load_file(out.hf_dir / "model.safetensors")
    patch = "model.vision_tower.timm_model.patch_embed.proj.weight"
    assert not torch.equal(base[patch], trained[patch])  # the tower trained on the tiles
    image = radiograph(tmp_path / "wide.png", 900, 448)
    answer = generate_one(str(out.hf_dir), str(image), PROMPT, SamplingParams(max_new_tokens=2))
    assert answer.prompt_tokens > 3 * TOKENS_A_TILE  # the export's own 1+2 tiles
