"""What the processor makes is what the model gets, for every family's shape-faithful stand-in.

For a batch of two records (images of different sizes, answers of different lengths) and for a
record with two images: ray_vlm's batch (encoder in the row form the pipeline streams, then
``collate``) holds every key and value of the processor's own batch, and the model's loss on both
is the same to 1e-5; ``generate`` answers. Every family's rows (text-only, one image, two images) cross Ray Data's Arrow
blocks, the form the pipeline streams them in, unchanged. A processor whose output has a key no
layout carries is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from ray.data.block import BlockAccessor

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.demo.assets import MODEL_BUILDERS
from ray_vlm.model import generate, load_model
from ray_vlm.preprocess import contract
from ray_vlm.preprocess.batching import collate
from ray_vlm.preprocess.contract import differences, own_batch
from ray_vlm.preprocess.encode import ROW_COLUMNS, Encoder
from ray_vlm.preprocess.layouts import LAYOUTS, LayoutError, check_keys
from ray_vlm.preprocess.processor import load_processor
from ray_vlm.records import ASSISTANT, USER, Record, Turn, select_datamix
from ray_vlm.train.loss import summed_token_loss

ONE_IMAGE = {"paligemma", "paligemma2_224_standin"}
"""PaliGemma-style prefix/suffix: one image per record in ray_vlm (not a processor limit)."""
FAMILIES = [name for name in MODEL_BUILDERS if name != "perception_lm_8b_standin"]
"""Every buildable model but the Perception LM 8B stand-in: its layout is ``perception_lm``'s and
its 36-tile images make 9,500-token records (``tests/demo/test_standins.py`` trains on them)."""


@pytest.fixture(scope="module")
def images(demo_assets: Path, tmp_path_factory) -> list[str]:
    """A demo image (384 px square) and the same one 300 x 500."""
    square = sorted((demo_assets / "data/plm/shapes/images").glob("*.png"))[0]
    tall = tmp_path_factory.mktemp("tall") / "tall.png"
    Image.open(square).resize((300, 500)).save(tall)
    return [str(square), str(tall)]


def _record(n: int, images: list[str], question: str, answer: str) -> Record:
    return Record(
        "t", f"t.jsonl:{n}", tuple(images), (Turn(USER, question), Turn(ASSISTANT, answer))
    )


def _loss(model, batch: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        return model(**batch).loss.item()


def _summed(model, batch: dict[str, torch.Tensor]) -> float:
    """The summed answer-token loss, as training computes it."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        return summed_token_loss(model(**inputs).logits, batch["labels"]).item()


@pytest.mark.parametrize("family", FAMILIES)
def test_ray_vlm_batch_is_the_processors_own(family: str, family_assets: Path, images) -> None:
    path = str(family_assets / "models" / family)
    encoder = Encoder(load_processor(path), max_seq_len=8192)
    model = load_model(path).eval()
    cases = [[_record(1, images[:1], "Describe the image.", "a red circle on the left"),
              _record(2, images[1:], "What colour is it?", "red")]]  # fmt: skip
    if encoder.layout.tile_stacks:  # its processor cannot batch images of different tile counts
        cases, images = [[r] for r in cases[0]], images[:1] * 2
    if family not in ONE_IMAGE:
        cases.append([_record(3, images, "Which one is taller?", "the second one")])
    for records in cases:
        own = own_batch(encoder, records)
        rows = [encoder.encode(r).row(r) for r in records]
        ours = collate(rows, encoder)
        assert differences(ours, own) == [], (family, len(records))
        assert _loss(model, ours) == pytest.approx(_loss(model, own), rel=1e-5, abs=1e-5)
        # Right-padding a record beside a longer one leaves its tokens' loss as it was alone
        # (positions, M-RoPE included, and padded image rows change nothing real).
        alone = sum(_summed(model, collate([row], encoder)) for row in rows)
        assert _summed(model, ours) == pytest.approx(alone, rel=1e-4)
    [answer] = generate(model, encoder.processor, [([Image.open(images[0])], "What is it?")])
    assert answer.completion_tokens >= 1  # the processor's whole output reaches generate too


@pytest.mark.parametrize("family", FAMILIES)
def test_rows_cross_arrow_blocks_unchanged(family: str, family_assets: Path, images) -> None:
    encoder = Encoder(load_processor(str(family_assets / "models" / family)), max_seq_len=8192)
    pictures = [[], images[:1]] + ([] if family in ONE_IMAGE else [images])
    if encoder.style == "prefix_suffix":
        pictures = pictures[1:]  # every PaliGemma record has an image
    records = [_record(n, p, "What is it?", "a shape") for n, p in enumerate(pictures)]
    rows = [encoder.encode(r).row(r) for r in records]
    columns = (*ROW_COLUMNS, *encoder.input_keys)
    block = BlockAccessor.batch_to_block({k: [row[k] for row in rows] for k in columns})
    back = list(BlockAccessor.for_block(block).iter_rows(public_row_format=True))
    for row, came in zip(rows, back, strict=True):
        for key in encoder.input_keys:  # a 0-d count comes back a Python int
            assert np.asarray(came[key]).dtype == row[key].dtype, (key, row[key].dtype)
            np.testing.assert_array_equal(came[key], row[key], err_msg=key)


def test_a_key_no_layout_carries_is_refused() -> None:
    class FuyuProcessor:  # a family ray_vlm does not know, whose images travel as patches lists
        pass

    with pytest.raises(LayoutError, match=r"FuyuProcessor returns image_patches_indices, .*"):
        check_keys(LAYOUTS["tiles"], FuyuProcessor(), ["input_ids", "image_patches_indices"])


def test_a_dropped_input_stops_the_run_before_ray_starts(family_assets: Path, monkeypatch) -> None:
    """What ``train`` and ``check-data`` run first: a batch that lost ``image_grid_thw`` (as the
    old collate lost it) is refused, naming the model type and the key."""
    cfg = load_config(
        FinetuneConfig,
        [f"checkpoint.init_ckpt_path={family_assets / 'models/qwen2_5_vl'}",
         f"data.datasets_yaml={family_assets / 'datasets.yaml'}", "data.datamix=demo_captions:1"],
    )  # fmt: skip
    specs = [spec for _, spec in select_datamix(cfg.data.datamix, cfg.data.datasets_yaml)]
    contract.check_model_inputs(cfg, specs)  # the real collate: nothing differs

    def lossy(examples, encoder):
        return {k: v for k, v in collate(examples, encoder).items() if k != "image_grid_thw"}

    monkeypatch.setattr(contract, "collate", lossy)
    with pytest.raises(LayoutError, match=r"model type 'qwen2_5_vl': .*image_grid_thw \(dropped\)"):
        contract.check_model_inputs(cfg, specs)
