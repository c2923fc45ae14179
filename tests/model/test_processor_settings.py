"""``processor_kwargs`` reach the processor wherever a model is loaded, and stay with it when saved.

The Perception-LM-8B stand-in's processor defaults to thumb+tile with up to 36 tiles (9,472 tokens
an image); ``ONE_TILE`` is PLM's fine-tuning setting (256 tokens).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ray_vlm.cli import main
from ray_vlm.config import UserError
from ray_vlm.export.generate_one import generate_one
from ray_vlm.model import SamplingParams, load_processor
from ray_vlm.serve.checkpoint import load_for_serving

ONE_TILE = {"max_num_tiles": 1, "vision_input_type": "vanilla"}


@pytest.fixture(scope="module")
def standin(demo_assets: Path) -> str:
    return str(demo_assets / "models/perception_lm_8b_standin")


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("image") / "xray.png"
    Image.new("L", (512, 512), 90).save(path)
    return str(path)


def _tiles(processor) -> tuple:
    ip = processor.image_processor
    return ip.max_num_tiles, ip.vision_input_type


def test_settings_override_the_saved_ones_and_are_saved(standin: str, tmp_path: Path) -> None:
    assert _tiles(load_processor(standin)) == (36, "thumb+tile")  # the hub default
    load_processor(standin, ONE_TILE).save_pretrained(tmp_path)  # as checkpoints' hf/ and exports
    assert _tiles(load_processor(str(tmp_path))) == (1, "vanilla")


def test_an_unknown_setting_is_a_user_error(standin: str) -> None:
    with pytest.raises(UserError, match=r"processor_kwargs: 'max_num_tile' is not a setting"):
        load_processor(standin, {"max_num_tile": 1})


def test_serving_applies_the_settings(standin: str) -> None:
    _, processor = load_for_serving(standin, "float32", ONE_TILE)
    assert _tiles(processor) == (1, "vanilla")


def test_generate_applies_the_settings(standin: str, image: str, capsys) -> None:
    answer = generate_one(standin, image, "Describe.", SamplingParams(max_new_tokens=1), ONE_TILE)
    assert 256 < answer.prompt_tokens < 300  # one tile, not 37
    flags = ["generate", "--ckpt", standin, "--media_path", image, "--question", "Describe."]
    assert (
        main([*flags, "--max_new_tokens", "1", "--processor_kwargs", '{"max_num_tiles": 1}']) == 0
    )
    assert main([*flags, "--processor_kwargs", '{"max_num_tile": 1}']) == 2
    assert "ray-vlm generate: processor_kwargs: 'max_num_tile'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*flags, "--processor_kwargs", "max_num_tiles=1"])  # not JSON: argparse's usage error
