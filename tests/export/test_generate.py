"""``resolve_model_dir`` on every form of checkpoint, and ``ray-vlm generate`` on each."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ray_vlm.cli import main
from ray_vlm.export import ExportError, resolve_model_dir
from ray_vlm.export.layout import CONSOLIDATED_DIR
from ray_vlm.train.run_state import CHECKPOINTS

QUESTION = "Describe the image."


def _generate(ckpt: Path | str, image: Path, capsys) -> str:
    argv = ["generate", "--ckpt", str(ckpt), "--media_type", "image", "--media_path", str(image)]
    assert main([*argv, "--question", QUESTION, "--max_new_tokens", "8"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("Generation: ")
    return line


@pytest.fixture(scope="module")
def image(demo_assets) -> Path:
    return next((demo_assets / "data" / "plm" / "shapes" / "images").glob("*.png"))


@pytest.mark.slow
def test_generate_on_a_raw_checkpoint_an_export_and_a_model_dir(
    checkpoints, demo_assets, image, tmp_path, capsys
) -> None:
    step = Path(
        shutil.copytree(
            checkpoints["llava_lora"],
            tmp_path / "run" / CHECKPOINTS / checkpoints["llava_lora"].name,
            ignore=shutil.ignore_patterns(CONSOLIDATED_DIR),
        )
    )
    raw = _generate(step, image, capsys)  # consolidates on the fly
    assert (step / CONSOLIDATED_DIR / "model.safetensors").is_file()
    assert _generate(step / CONSOLIDATED_DIR, image, capsys) == raw
    assert _generate(tmp_path / "run", image, capsys) == raw  # a dump_dir: its latest step
    _generate(demo_assets / "models" / "llava", image, capsys)


def test_resolve_model_dir_forms(tmp_path) -> None:
    assert resolve_model_dir("facebook/Perception-LM-1B") == "facebook/Perception-LM-1B"
    with pytest.raises(ExportError, match="no such directory"):
        resolve_model_dir(str(tmp_path / "missing"))
    with pytest.raises(ExportError, match="not a Hugging Face directory"):
        resolve_model_dir(str(tmp_path))
    (tmp_path / CHECKPOINTS / "0000000001").mkdir(parents=True)  # incomplete: ignored
    with pytest.raises(ExportError, match="no complete checkpoint"):
        resolve_model_dir(str(tmp_path))


def test_generate_refuses_video_and_a_missing_image(demo_assets, tmp_path, capsys) -> None:
    model = str(demo_assets / "models" / "llava")
    common = ["generate", "--ckpt", model, "--question", QUESTION]
    assert main([*common, "--media_type", "video", "--media_path", str(tmp_path)]) == 2
    assert "video is not supported" in capsys.readouterr().err
    assert main([*common, "--media_path", str(tmp_path / "none.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
