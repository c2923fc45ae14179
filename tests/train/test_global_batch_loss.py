"""The loss of a step is the mean over every answer token of the global batch.

One SGD step of ``train(cfg)`` with 2 workers x ``grad_acc_steps`` 2 (real Ray Train, DeepSpeed
ZeRO-3) on a batch mixing captions with one-word VQA answers updates the weights exactly as one
step on the whole batch in a single process does; the logged loss is that batch's token mean.
SGD (update = lr x gradient) makes the comparison a comparison of gradients, and the step is large
enough that a mean of per-micro-batch means would miss by far more than the tolerance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.model import load_model, load_processor
from ray_vlm.preprocess.batching import collate
from ray_vlm.preprocess.encode import Encoder
from ray_vlm.train.loss import answer_tokens, summed_token_loss
from ray_vlm.train.record_ids import records_by_id, step_ids
from ray_vlm.train.trainer import train
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_local")]

LR = 0.5


def _examples(cfg: FinetuneConfig, ids: list[str], processor) -> list[dict]:
    records = records_by_id(cfg)
    encoder = Encoder(processor, cfg.data.max_seq_len)
    rows = [encoder.encode(records[i]).row(records[i]) for i in ids]
    return rows


def _sgd_step(base: str, batches: list[list[dict]], processor, total_tokens: int | None):
    """One SGD step from ``base`` over ``batches``: the global token mean when ``total_tokens``
    is given, else the mean of per-batch means. Returns ``(weights, loss)``."""
    model = load_model(base)
    encoder = Encoder(processor, 512)
    loss_value = 0.0
    for examples in batches:
        inputs = collate(examples, encoder)
        labels = inputs.pop("labels")
        summed = summed_token_loss(model(**inputs).logits, labels)
        n = total_tokens if total_tokens else answer_tokens(labels) * len(batches)
        (summed / n).backward()
        loss_value += float(summed.detach() / n)
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= LR * p.grad
    return {k: v.detach() for k, v in model.named_parameters()}, loss_value


def test_one_step_on_2_workers_x_2_micro_batches_equals_one_step_on_the_whole_batch(
    tmp_path: Path, demo_assets: Path
) -> None:
    base = str(demo_assets / "models/llava")
    cfg = load_config(
        FinetuneConfig,
        [
            f"dump_dir={tmp_path / 'run'}",
            f"checkpoint.init_ckpt_path={base}",
            f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
            f"data.datasets_yaml={demo_assets / 'datasets.yaml'}",
            "data.datamix=demo_captions:1,demo_vqa:1",
            "data.preprocess_workers=0",  # each rank encodes its records: no actors to start
            "data.group_by_length=false",
            "batch_size=2",
            "grad_acc_steps=2",
            "steps=1",
            "optim.name=sgd",
            f"optim.lr={LR}",
            "optim.warmup=0",
            "optim.clip=0",
            "logging.freq=1",
            "logging.record_ids=true",
        ],
    )
    result = train(cfg)
    micro_ids = [list(m) for rank in step_ids(result.dump_dir)[1] for m in rank]
    assert [len(m) for m in micro_ids] == [2, 2, 2, 2]  # 2 ranks x 2 micro-batches of 2
    processor = load_processor(base)
    micro = [_examples(cfg, ids, processor) for ids in micro_ids]
    examples = [e for batch in micro for e in batch]
    lengths = {sum(e["labels"] != -100) for e in examples}
    assert len(lengths) > 1, "the batch must mix long and short answers"

    tokens = sum(int((e["labels"][1:] != -100).sum()) for e in examples)
    expected, loss = _sgd_step(base, [examples], processor, tokens)
    trained = get_fp32_state_dict_from_zero_checkpoint(str(result.checkpoint), tag="ds")
    assert set(expected) <= set(trained)
    assert result.metrics[0]["loss"] == pytest.approx(loss, rel=1e-5)
    initial = {k: v.detach() for k, v in load_model(base).named_parameters()}
    moved = max(float((expected[k] - initial[k]).abs().max()) for k in expected)
    assert moved > 1e-2  # the step is large: a gradient error shows far above the tolerance
    for key, value in expected.items():
        torch.testing.assert_close(trained[key], value, rtol=0, atol=1e-5, msg=key)

    per_batch_means, _ = _sgd_step(base, micro, processor, total_tokens=None)
    off = max(float((per_batch_means[k] - trained[k]).abs().max()) for k in expected)
    assert off > 1e-4, "a mean of per-micro-batch means should not match the global mean"
