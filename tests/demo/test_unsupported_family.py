"""A real transformers VLM family ray_vlm does not support (Fuyu, a tiny stand-in built here) is
refused before Ray starts: ``check-data`` and ``train`` end with one ``ray-vlm <command>:`` line
naming the model type, status 2, no traceback, no Ray cluster.

What refuses it: ``FuyuProcessor`` is a class no layout is listed for, and what it declares it
returns (``model_input_names``) holds ``image_patches``, which no layout carries; ``Encoder``
checks that first for such a class (a Fuyu directory also loads without its chat template in
transformers 5.23: ``FuyuProcessor.__init__`` does not pass it on). A processor that fails on the
probe record itself is refused in one line too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers import AutoModelForImageTextToText, AutoProcessor

from ray_vlm.demo.assets import MODEL_BUILDERS
from ray_vlm.demo.shapes import corpus
from ray_vlm.preprocess.encode import Encoder
from ray_vlm.preprocess.layouts import LayoutError, check_keys, layout_for
from ray_vlm.preprocess.processor import load_processor
from tests.conftest import REPO
from tests.demo.unsupported_family import build_fuyu

CONFIG = ("--config", "configs/finetune/demo.yaml")


@pytest.fixture(scope="module")
def fuyu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fuyu(tmp_path_factory.mktemp("unsupported") / "fuyu", corpus())


def test_the_fuyu_stand_in_loads_as_a_checkpoint_and_is_not_advertised(fuyu: Path) -> None:
    processor = AutoProcessor.from_pretrained(fuyu)
    model = AutoModelForImageTextToText.from_pretrained(fuyu)
    assert (type(processor).__name__, type(model).__name__) == ("FuyuProcessor", "FuyuForCausalLM")
    assert "fuyu" not in MODEL_BUILDERS
    # Saved, but FuyuProcessor.__init__ drops it on load: no Fuyu directory has a chat template.
    assert (fuyu / "chat_template.jinja").is_file() and processor.chat_template is None
    assert "image_patches" in processor.model_input_names
    with pytest.raises(LayoutError, match=r"FuyuProcessor returns image_patches, .*not supported"):
        check_keys(layout_for(processor), processor, processor.model_input_names)


def test_a_processor_that_fails_on_the_probe_is_refused_in_one_line(demo_assets: Path) -> None:
    """A supported family whose processor cannot work as set (two channel means for RGB)."""
    processor = load_processor(str(demo_assets / "models/llava"))
    processor.image_processor.image_mean = [0.5, 0.5]
    with pytest.raises(
        LayoutError, match=r"^LlavaProcessor fails on a probe record .*: \w+Error: ."
    ) as err:
        Encoder(processor, max_seq_len=512)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("command", ["check-data", "train"])
def test_an_unsupported_family_stops_before_ray_starts(
    command: str, fuyu: Path, demo_assets: Path, tmp_path: Path
) -> None:
    args = [
        f"checkpoint.init_ckpt_path={fuyu}",
        f"data.datasets_yaml={demo_assets / 'datasets.yaml'}",
        "data.datamix=demo_captions:1",
        f"dump_dir={tmp_path / 'run'}",
    ]
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "ray")}  # a Ray started would be found there
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ray_vlm.cli", command, *CONFIG, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ray-vlm {command}: model type 'fuyu': FuyuProcessor "), last
    assert "image_patches" in last and "not supported" in last, last
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "Started a local Ray instance" not in done.stdout + done.stderr
    assert not (tmp_path / "ray").exists()
    assert seconds < 30, seconds


def test_a_family_whose_image_cannot_fit_max_seq_len_is_refused_before_ray(
    family_assets: Path,
) -> None:
    """LLaVA-NeXT's anyres image takes ~1,200 tokens: at the default ``data.max_seq_len`` (512)
    every record with an image is too long, and training could not pad an image-less batch."""
    from ray_vlm.config import FinetuneConfig, load_config
    from ray_vlm.preprocess.contract import check_model_inputs

    cfg = load_config(
        FinetuneConfig,
        [f"checkpoint.init_ckpt_path={family_assets / 'models/llava_next'}"],
    )
    with pytest.raises(
        LayoutError, match=r"^model type 'llava_next': a record with one image"
    ) as e:
        check_model_inputs(cfg, [])
    assert "data.max_seq_len=512" in str(e.value) and "\n" not in str(e.value)
