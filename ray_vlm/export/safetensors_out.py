"""Sharded safetensors written one tensor at a time: ``save_pretrained``'s files in bounded memory.

``write_sharded(folder, specs, produce, max_shard_size)``: ``specs`` maps every tensor name to a
``meta`` tensor of its shape and dtype; the names are cut into files as ``huggingface_hub``'s
``split_torch_state_dict_into_shards`` cuts them (one ``model.safetensors``, or
``model-0000k-of-0000n.safetensors`` + ``model.safetensors.index.json``). Each file's header is
written from the specs first, then each tensor as ``produce(name)`` returns it, so only one
tensor is in memory at a time. The files are plain safetensors (``safetensors.safe_open`` reads them).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import torch
from huggingface_hub import split_torch_state_dict_into_shards

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.bfloat16: "BF16",
    torch.float16: "F16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def _header(names: list[str], specs: dict[str, torch.Tensor]) -> bytes:
    header: dict[str, dict] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in names:
        spec = specs[name]
        end = offset + spec.numel() * spec.element_size()
        header[name] = {
            "dtype": DTYPES[spec.dtype],
            "shape": list(spec.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the tensor data starts 8-byte aligned, as safetensors writes it
    return struct.pack("<Q", len(raw)) + raw


def _write_file(
    path: Path,
    names: list[str],
    specs: dict[str, torch.Tensor],
    produce: Callable[[str], torch.Tensor],
) -> None:
    with path.open("wb") as f:
        f.write(_header(names, specs))
        for name in names:
            tensor = produce(name)
            spec = specs[name]
            if tensor.shape != spec.shape or tensor.dtype != spec.dtype:
                raise ValueError(
                    f"{name}: produced {tuple(tensor.shape)} {tensor.dtype}, "
                    f"expected {tuple(spec.shape)} {spec.dtype}"
                )
            f.write(tensor.contiguous().reshape(-1).view(torch.uint8).numpy())


def write_sharded(
    folder: Path,
    specs: dict[str, torch.Tensor],
    produce: Callable[[str], torch.Tensor],
    max_shard_size: str,
) -> list[str]:
    """Write the tensors ``specs`` names into ``folder``; returns the weight file names."""
    split = split_torch_state_dict_into_shards(
        specs, filename_pattern=WEIGHTS.replace(".safetensors", "{suffix}.safetensors"),
        max_shard_size=max_shard_size,
    )  # fmt: skip
    for filename, names in split.filename_to_tensors.items():
        _write_file(folder / filename, names, specs, produce)
    if split.is_sharded:
        index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
        (folder / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return list(split.filename_to_tensors)
