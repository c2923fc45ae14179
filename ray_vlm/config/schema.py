"""Every config value ray_vlm reads, with its default: the one place defaults live.

Each field's docstring is its documentation. Load with ``ray_vlm.config.load_config``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from ray_vlm.config.loader import ConfigError
from ray_vlm.config.paths import resolve_optional, resolve_required, search_bases

BAD_RECORD_POLICIES = ("skip", "fail")


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ConfigError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"key '{key}': '{value}' is not one of {', '.join(choices)}")


@dataclass
class DataConfig:
    datamix: str = "demo_captions:1"
    """Sources and their weights, PLM syntax ``name_a:1,name_b:3``; names from ``datasets_yaml``."""
    datasets_yaml: str = "configs/datasets.yaml"
    """Registry mapping a dataset name to ``{annotation, root_dir, format}`` (PLM layout)."""
    bad_records: str = "skip"
    """``skip``: count and report invalid records, go on; ``fail``: stop at the first one."""
    max_seq_len: int = 512
    """Longest example in tokens. Longer ones lose text from the end, never image tokens."""
    max_image_pixels: int = 89_478_485
    """Largest image (width x height) a record may have; a larger one is a bad record (``image``),
    found before it is decoded. The default is Pillow's decompression-bomb warning bound."""
    preprocess_workers: int = 2
    """Ray Data actors running the processor (each holds one copy, uses one CPU), shared out over
    the training workers (at least one each). 0: each training worker reads and encodes its own
    records in its own process, no actors (small models and CPU runs, where an actor's start-up,
    ~7 CPU-seconds of imports, costs more than the records; ``check-data`` still uses one)."""
    preprocess_batch_size: int = 16
    """Records per preprocessing call."""
    group_by_length: bool = True
    """Form batches from examples of similar length (less padding)."""
    length_group_batches: int = 16
    """How many batches' worth of examples are sorted by length together."""

    def __post_init__(self) -> None:
        check_choice("data.bad_records", self.bad_records, BAD_RECORD_POLICIES)
        if self.preprocess_workers < 0:
            raise ConfigError("key 'data.preprocess_workers': must be >= 0")


TRAINABLE_MODES = ("full", "freeze_vision", "attention_only", "regex", "lora")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FROZEN_DTYPES = ("float32", "bfloat16", "float16")
ATTN_IMPLEMENTATIONS = ("auto", "eager", "sdpa", "flash_attention_2", "flex_attention")
OPTIMIZERS = ("adamw", "sgd")
EXPORT_DTYPES = ("auto", "float32", "bfloat16", "float16")
SHARD_SIZE = re.compile(r"\d+(\.\d+)?[KMGT]B", re.IGNORECASE)  # huggingface_hub's size strings


@dataclass
class DumpConfig:
    every: int = 100
    """Save a checkpoint every this many steps (and always at the last step); 0: only the last."""
    keep: int = 2
    """Checkpoints kept on storage (oldest removed first); 0 keeps all."""


@dataclass
class CheckpointConfig:
    init_ckpt_path: str = "demo_out/assets/models/llava"
    """Initial weights: a hub id (``facebook/Perception-LM-8B``) or a local Hugging Face directory."""
    dump: DumpConfig = field(default_factory=DumpConfig)


@dataclass
class OptimConfig:
    name: str = "adamw"
    """``adamw`` (betas, eps, weight decay below) or ``sgd`` (plain SGD, as the PaliGemma guide's
    update ``param - lr * grad``)."""
    lr: float = 1e-4
    """Peak learning rate (AdamW), reached after ``warmup`` steps."""
    weight_decay: float = 0.0
    warmup: int = 10
    """Linear warm-up steps from 0 to ``lr``."""
    lr_min_ratio: float = 0.0
    """Cosine decay ends at ``lr * lr_min_ratio`` at the last step."""
    clip: float = 1.0
    """Gradient clipping: largest global gradient norm (0 turns clipping off)."""
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8

    def __post_init__(self) -> None:
        check_choice("optim.name", self.name, OPTIMIZERS)
        if self.lr <= 0 or self.warmup < 0 or not 0 <= self.lr_min_ratio <= 1 or self.clip < 0:
            raise ConfigError(
                "keys 'optim.*': need lr > 0, warmup >= 0, 0 <= lr_min_ratio <= 1, clip >= 0"
            )


@dataclass
class LoraConfig:
    r: int = 8
    """Rank of the LoRA update matrices."""
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    """Module names (of the language model) that get LoRA adapters."""


@dataclass
class ModelConfig:
    trainable: str = "full"
    """What trains: ``full``; ``freeze_vision`` (vision tower frozen; projector + LM train);
    ``attention_only`` (only the language model's attention weights, the PaliGemma guide's choice);
    ``regex`` (parameters whose name matches one of ``trainable_patterns``); ``lora`` (peft)."""
    trainable_patterns: list[str] = field(default_factory=list)
    """Regular expressions (``re.search``) of trainable parameter names, for ``trainable=regex``."""
    frozen_dtype: str = "float32"
    """dtype frozen parameters are stored in (``bfloat16``/``float16`` halve it, as the PaliGemma
    guide); they compute in float32. Saves memory with gradient checkpointing (else a frozen module
    a gradient passes keeps its float32 copy to the backward pass). For float32 runs only."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, ~30% more compute)."""
    attn_implementation: str = "auto"
    """Attention kernel training uses: ``auto`` is what transformers picks for each sub-model (sdpa
    where the family supports it; eager where it does not, e.g. Gemma-2's logit softcapping in
    PaliGemma-2); or ``eager`` / ``sdpa`` / ``flash_attention_2`` / ``flex_attention`` for every
    sub-model. Saved with checkpoints and exports (``config.yaml``)."""
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    """Settings overriding the saved ones of ``checkpoint.init_ckpt_path``'s processor, wherever
    training loads it (preprocessing, every worker, check-data), e.g. Perception LM's
    ``{max_num_tiles: 1, vision_input_type: vanilla}`` (PLM's fine-tuning recipe; its default
    thumb+tile makes up to 37 x 256 tokens an image). Saved with checkpoints and exports. An
    unknown key is an error."""
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        check_choice("model.trainable", self.trainable, TRAINABLE_MODES)
        check_choice("model.frozen_dtype", self.frozen_dtype, FROZEN_DTYPES)
        check_choice("model.attn_implementation", self.attn_implementation, ATTN_IMPLEMENTATIONS)
        if self.trainable == "regex" and not self.trainable_patterns:
            raise ConfigError(
                "key 'model.trainable_patterns': give at least one for trainable=regex"
            )


@dataclass
class DistributedConfig:
    num_workers: int = 2
    """Ray Train workers (one process each; one GPU each with ``use_gpu``)."""
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 1.0
    """GPUs per worker when ``use_gpu``: whole GPUs (a rank computes on one; NCCL and DeepSpeed
    cannot put two ranks on one GPU). Raise ``num_workers`` to use more GPUs."""
    zero_stage: int = 3
    """DeepSpeed ZeRO stage 0-3; 3 shards parameters, gradients and optimizer state."""
    offload_optimizer: bool = False
    """ZeRO-Offload: optimizer state in CPU memory."""
    offload_params: bool = False
    """ZeRO-Infinity style parameter offload to CPU memory (stage 3 only)."""
    deepspeed_config: str = "configs/deepspeed/zero3.json"
    """Base DeepSpeed JSON; batch sizes, optimizer, precision and the stage are set from this config."""
    precision: str = "auto"
    """``auto``: bf16 on GPU, fp32 on CPU; or ``fp32``/``bf16``/``fp16``."""
    max_failures: int = 3
    """Times Ray Train restarts the worker group after a failure before the run fails."""
    timeout_s: int = 1800
    """How long a collective waits for every rank before the run fails (the process group's
    timeout, on the Ray and the ``torchrun`` path): long enough for the start-up work one rank
    does while the others wait (rank 0 reading a checkpoint, a first DeepSpeed op build)."""

    def __post_init__(self) -> None:
        check_choice("distributed.precision", self.precision, PRECISIONS)
        if self.zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"key 'distributed.zero_stage': {self.zero_stage} is not 0-3")
        if self.num_workers < 1:
            raise ConfigError("key 'distributed.num_workers': must be >= 1")
        if self.timeout_s < 1:
            raise ConfigError("key 'distributed.timeout_s': must be >= 1 (seconds)")
        if self.gpus_per_worker != 1:
            raise ConfigError(
                f"key 'distributed.gpus_per_worker': {self.gpus_per_worker}: training takes one "
                "whole GPU a worker (two ranks cannot share one under NCCL and DeepSpeed, and a "
                "rank computes on one); set it to 1 and use distributed.num_workers"
            )


@dataclass
class ExportConfig:
    dtype: str = "auto"
    """dtype of the exported weights (``consolidate``): ``auto`` is bfloat16 when the run trained in
    bf16, else the base model's dtype (its config's ``dtype``; float32 when it names none); or
    ``float32``/``bfloat16``/``float16``."""
    max_shard_size: str = "5GB"
    """Largest safetensors file of an export (``model-0000k-of-0000n.safetensors`` + index, as on the
    hub; one ``model.safetensors`` when it all fits). Export memory does not depend on it: weights
    are written one tensor at a time."""

    def __post_init__(self) -> None:
        check_choice("export.dtype", self.dtype, EXPORT_DTYPES)
        if not SHARD_SIZE.fullmatch(self.max_shard_size.strip()):
            raise ConfigError(
                f"key 'export.max_shard_size': '{self.max_shard_size}' is not a size like 500MB or 5GB"
            )


@dataclass
class LoggingConfig:
    freq: int = 10
    """Write a metrics line (and a progress line to ``train.log``) every this many steps."""
    record_ids: bool = False
    """Write the record ids (``file:line``) every rank trained on at each step to
    ``record_ids.jsonl`` in ``dump_dir`` (audits, the learning-parity benchmark)."""
    tensorboard: bool = False
    """Write every metrics line as TensorBoard scalars (tag = metric name, at its step) to
    ``<dump_dir>/tensorboard/``; with ``dump_dir`` in a bucket they are written on rank 0's node
    and uploaded after each line. Needs ``pip install 'ray-vlm[tracking]'``."""
    mlflow_tracking_uri: str = ""
    """Log the run to MLflow (``""``: off): a local store (``file:///abs/mlruns`` or a path, made
    absolute on the driver; on a cluster rank 0's node writes it, so use a shared path) or a tracking
    server (``http://host:5000``). The resolved config is logged as params (``section.key``), every
    metrics line as metrics at its step, the export's location as the tag ``export_location``.
    Needs ``pip install 'ray-vlm[tracking]'``."""
    mlflow_experiment: str = "ray_vlm"
    """MLflow experiment the run is logged under (created when missing); the run is named ``name``."""


@dataclass
class ValidationConfig:
    datamix: str = ""
    """Held-out sources scored during training, datamix syntax (``demo_vqa_test:1``; names from
    ``data.datasets_yaml``): every record of each source once, the weights unused. Empty: no
    validation. A source whose annotation file ``data.datamix`` also reads is refused."""
    every: int = 0
    """Validate every this many steps, and always at the last step; 0: only at the last step."""

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ConfigError("key 'eval.every': must be >= 0")


@dataclass
class FinetuneConfig:
    dump_dir: str = "demo_out/runs/finetune"
    """Where checkpoints, logs, metrics and the resolved config are written: a local path, a shared
    filesystem path every node sees (NFS, EFS), or a URI (``s3://bucket/runs/a``, ``gs://...``; see
    ``ray_vlm.storage``). A multi-node run refuses a path that only some nodes see."""
    name: str = "finetune"
    """Run name (Ray Train run name, shown in logs)."""
    steps: int = 100
    """Total optimizer steps."""
    batch_size: int = 8
    """Examples per worker per micro-step."""
    grad_acc_steps: int = 1
    """Micro-steps accumulated per optimizer step (global batch = batch_size x workers x this)."""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    eval: ValidationConfig = field(default_factory=ValidationConfig)
    """Validation loss during training on held-out records (``train/validation.py``)."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.grad_acc_steps < 1:
            raise ConfigError("keys 'steps', 'batch_size', 'grad_acc_steps': must be >= 1")

    def resolve_paths(self, config_file: str | None = None) -> FinetuneConfig:
        """This config with its relative paths found by ``config.paths``' rule (the working
        directory, beside ``config_file``, the ray_vlm checkout) and made absolute: the DeepSpeed
        JSON and the registry must exist (``ConfigError`` naming the key); the initial model may be
        a hub id. ``load_config`` applies it; so does the start of a run (configs built in code)."""
        bases = search_bases(config_file)
        data, dist, ckpt = self.data, self.distributed, self.checkpoint
        return replace(
            self,
            data=replace(
                data,
                datasets_yaml=resolve_required(data.datasets_yaml, "data.datasets_yaml", bases),
            ),
            distributed=replace(
                dist,
                deepspeed_config=resolve_required(
                    dist.deepspeed_config, "distributed.deepspeed_config", bases
                ),
            ),
            checkpoint=replace(ckpt, init_ckpt_path=resolve_optional(ckpt.init_ckpt_path, bases)),
        )
