"""A fixed batch of demo records, encoded and collated exactly as training does."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import torch

from ray_vlm.preprocess.batching import collate
from ray_vlm.preprocess.encode import Encoder
from ray_vlm.preprocess.processor import load_processor
from ray_vlm.records import load_registry, read_records, resolve_spec


def demo_batch(assets: Path, arch: str, n: int = 4, offset: int = 0) -> dict[str, torch.Tensor]:
    """Records ``offset .. offset+n`` of ``demo_captions`` as a model-ready batch for ``arch``."""
    processor = load_processor(str(assets / "models" / arch))
    name = "demo_captions"
    spec = resolve_spec(name, load_registry(assets / "datasets.yaml")[name])
    encoder = Encoder(processor, max_seq_len=512)
    records = islice(read_records(spec), offset, offset + n)
    return collate([encoder.encode(r).row(r) for r in records], encoder)
