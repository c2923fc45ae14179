"""Trainable-parameter modes on the three tiny architectures: the intended set trains, the rest
is frozen (in ``frozen_dtype``) and stays bit-identical through optimizer steps."""

from __future__ import annotations

import re

import pytest
import torch
from transformers import AutoModelForImageTextToText

from ray_vlm.config import ConfigError
from ray_vlm.config.schema import ModelConfig
from ray_vlm.train.trainable import apply_trainable, trainable_report
from tests.export.batches import demo_batch

ARCHS = ("llava", "paligemma", "perception_lm")
VISION = "model.vision_tower."
LANGUAGE = "model.language_model."
PATTERNS = ["multi_modal_projector", r"layers\.1\.mlp\."]
LAYERS = 2  # tiny_models.TEXT["num_hidden_layers"]


def expected(mode: str, name: str) -> bool:
    """Whether parameter ``name`` of the unwrapped model should train under ``mode``."""
    if mode == "full":
        return True
    if mode == "freeze_vision":
        return not name.startswith(VISION)
    if mode == "attention_only":
        return (
            re.fullmatch(
                r"model\.language_model\.layers\.\d+\.self_attn\.[qkvo]_proj\.weight", name
            )
            is not None
        )
    return any(re.search(p, name) for p in PATTERNS)  # layers.1.mlp: vision tower's too


def load(demo_assets, arch: str):
    return AutoModelForImageTextToText.from_pretrained(demo_assets / "models" / arch)


def train_steps(model, batch: dict, steps: int = 2) -> set[str]:
    """Plain AdamW steps; returns the names of parameters that received a gradient."""
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    got_grad: set[str] = set()
    for _ in range(steps):
        model(**batch).loss.backward()
        got_grad |= {n for n, p in model.named_parameters() if p.grad is not None}
        optim.step()
        optim.zero_grad()
    return got_grad


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("mode", ["full", "freeze_vision", "attention_only", "regex"])
def test_mode_trains_exactly_the_intended_parameters(demo_assets, arch: str, mode: str) -> None:
    frozen_dtype = "float32" if mode == "full" else "bfloat16"
    cfg = ModelConfig(trainable=mode, trainable_patterns=PATTERNS, frozen_dtype=frozen_dtype)
    model = apply_trainable(load(demo_assets, arch), cfg)
    names = dict(model.named_parameters())
    want = {n for n in names if expected(mode, n)}
    assert want and {n for n, p in names.items() if p.requires_grad} == want
    for n, p in names.items():
        assert p.dtype == (torch.float32 if n in want else torch.bfloat16), n

    before = {n: p.detach().clone() for n, p in names.items()}
    got_grad = train_steps(model, demo_batch(demo_assets, arch))
    changed = {n for n, p in names.items() if not torch.equal(p, before[n])}
    assert got_grad <= want and changed == got_grad  # frozen ones bit-identical
    assert len(got_grad) > len(want) // 2  # most (unused heads, e.g. SigLIP's, get no gradient)

    report = {part: (t, total) for part, t, total in trainable_report(model)}
    assert sum(t for t, _ in report.values()) == sum(names[n].numel() for n in want)
    assert report["vision_tower"][0] == sum(names[n].numel() for n in want if VISION in n)


@pytest.mark.parametrize("arch", ARCHS)
def test_lora_adapts_only_the_language_model(demo_assets, arch: str) -> None:
    cfg = ModelConfig(trainable="lora", frozen_dtype="float16")
    model = apply_trainable(load(demo_assets, arch), cfg)
    names = dict(model.named_parameters())
    trained = {n for n, p in names.items() if p.requires_grad}
    targets = "|".join(cfg.lora.target_modules)
    pattern = rf"base_model\.model\.{LANGUAGE}layers\.\d+\.self_attn\.({targets})\.lora_[AB]\.default\.weight"
    assert all(re.fullmatch(pattern, n) for n in trained)
    assert len(trained) == LAYERS * len(cfg.lora.target_modules) * 2
    assert not any("lora_" in n for n in names if VISION in n)  # CLIP/SigLIP have q_proj too
    assert {p.dtype for n, p in names.items() if n not in trained} == {torch.float16}

    before = {n: p.detach().clone() for n, p in names.items()}
    got_grad = train_steps(model, demo_batch(demo_assets, arch))
    changed = {n for n, p in names.items() if not torch.equal(p, before[n])}
    assert changed == got_grad == trained


def test_a_pattern_matching_nothing_is_named(demo_assets) -> None:
    cfg = ModelConfig(trainable="regex", trainable_patterns=["lm_head", "no_such_module"])
    with pytest.raises(ConfigError, match="'no_such_module' matches no parameter"):
        apply_trainable(load(demo_assets, "llava"), cfg)


def test_an_unknown_lora_target_is_named(demo_assets) -> None:
    cfg = ModelConfig(trainable="lora")
    cfg.lora.target_modules = ["q_proj", "qkv"]  # timm's fused name, not in the language model
    with pytest.raises(ConfigError, match="no module named 'qkv'"):
        apply_trainable(load(demo_assets, "perception_lm"), cfg)


def test_a_bf16_model_keeps_its_dtype_and_lora_adapters_take_it(demo_assets) -> None:
    """A bf16 run loads the model in bf16: nothing is cast (frozen_dtype is for float32 runs) and
    LoRA adapters are created in bf16 too (DeepSpeed's bf16 optimizer needs one dtype)."""
    path = demo_assets / "models" / "llava"
    batch = demo_batch(demo_assets, "llava")
    for cfg in (
        ModelConfig(trainable="attention_only", frozen_dtype="float16"),
        ModelConfig(trainable="lora", frozen_dtype="float16"),
    ):
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.bfloat16)
        model = apply_trainable(model, cfg)
        assert {p.dtype for p in model.parameters()} == {torch.bfloat16}, cfg.trainable
        assert torch.isfinite(model(**batch).loss)  # no hook casts activations to float32


def test_half_precision_frozen_weights_are_storage_and_compute_in_float32(demo_assets) -> None:
    """A frozen MLP stored in float16 computes like float32 on its rounded weights: activations
    past fp16's range (65,504) and gradients below its smallest (6e-8) come through."""
    model = apply_trainable(
        load(demo_assets, "paligemma"),
        ModelConfig(trainable="attention_only", frozen_dtype="float16"),
    )
    mlp = model.model.language_model.layers[0].mlp
    assert {p.dtype for p in mlp.parameters()} == {torch.float16}
    reference = {n: p.detach().float() for n, p in mlp.named_parameters()}
    x = (1e5 * torch.randn(2, 3, mlp.gate_proj.in_features)).requires_grad_()
    out = mlp(x)
    expect = torch.func.functional_call(mlp, reference, (x,))  # the same, unwrapped: float32
    assert out.dtype == torch.float32 and out.isfinite().all()
    torch.testing.assert_close(out, expect)
    (grad,) = torch.autograd.grad(out, x, torch.full_like(out, 1e-9))
    (expect_grad,) = torch.autograd.grad(expect, x, torch.full_like(out, 1e-9))
    assert grad.abs().max() > 0 and grad.isfinite().all()
    torch.testing.assert_close(grad, expect_grad)
    assert {p.dtype for p in mlp.parameters()} == {torch.float16}  # stored half again after


@pytest.mark.slow
def test_100_steps_with_float16_frozen_weights_track_float32(demo_assets) -> None:
    """The PaliGemma guide's recipe (attention only, SGD lr 0.01, frozen weights in float16) and
    the same in float32 lose the same: loss curves within 1%, no NaN."""
    batches = [demo_batch(demo_assets, "paligemma", n=2, offset=2 * i) for i in range(4)]
    curves = []
    for frozen_dtype in ("float32", "float16"):
        torch.manual_seed(0)
        model = apply_trainable(
            load(demo_assets, "paligemma"),
            ModelConfig(trainable="attention_only", frozen_dtype=frozen_dtype),
        )
        optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
        losses = []
        for step in range(100):
            loss = model(**batches[step % len(batches)]).loss
            loss.backward()
            optim.step()
            optim.zero_grad()
            losses.append(loss.item())
        curves.append(torch.tensor(losses))
    full, half = curves
    assert half.isfinite().all() and full[-1] < full[0]
    assert ((half - full).abs() / full).max() < 0.01
