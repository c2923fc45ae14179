"""Full-size weights of a DeepSpeed checkpoint (ZeRO stage 0-3, any world size), one at a time.

``ZeroWeights(ds_dir)`` reads what ``engine.save_checkpoint(..., tag)`` wrote into ``ds_dir`` the
way DeepSpeed's ``zero_to_fp32`` does, without its full copies: every file is memory-mapped and
``read(name)`` assembles one weight from the ranks' pieces into a tensor of its own, then hands the
mapped pages it touched back to the OS. A process reading a whole checkpoint this way holds about
one weight at a time, whatever the model's size. Where each weight is:

- trainable parameters: the fp32 master weights in the optimizer files
  (``[bf16_]zero_pp_rank_<r>_mp_rank_00_optim_states.pt``). ZeRO-3: each rank keeps, for every parameter
  in order, its ``ceil(numel / world)`` piece (the last rank's padded); ZeRO-1/2: each parameter
  group is one flat vector cut into a contiguous piece per rank, parameters in order with their
  alignment padding;
- frozen parameters, in the dtype training held them in: ``frozen_param_fragments`` of the
  model-state files (ZeRO-3: ``zero_pp_rank_<r>_mp_rank_00_model_states.pt``, one piece per rank;
  ZeRO-1/2: ``mp_rank_00_model_states.pt``, whole);
- buffers: the model-state file of rank 0; tied parameters (``shared_params``) under every name;
- ZeRO-0 (no optimizer files): ``mp_rank_00_model_states.pt`` holds the whole module.

A step dir may come from outside a run (``serve``/``evaluate`` pointed at a downloaded
checkpoint): its files are unpickled with ``torch.load(weights_only=True)``, which builds
tensors, containers and the few DeepSpeed records in ``DEEPSPEED_GLOBALS`` and never calls
anything else. A file that holds any other object is refused (``UserError``) before it runs code.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import math
import mmap
import pickle
import re
from pathlib import Path

import torch

from ray_vlm.config import UserError

ZERO3_WEIGHTS = "fp32_flat_groups"
ZERO12_WEIGHTS = "single_partition_of_fp32_groups"
"""Where an optimizer file keeps the fp32 master weights (all this reads of it besides counts)."""
_RANK = re.compile(r"zero_pp_rank_(\d+)_")
_GLOBAL = re.compile(r"GLOBAL (\S+)")
DEEPSPEED_GLOBALS = (
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
    "deepspeed.utils.tensor_fragment.fragment_address",
)
"""Every non-tensor type DeepSpeed (0.19) pickles into its checkpoint files (found by loading
ZeRO 0-3, fp32 and bf16, full and LoRA runs' files; fp16 runs keep a dynamic loss scaler): plain
records (the ZeRO stage, the loss scale, a fragment's offsets) whose construction runs no code of
the file's choosing."""


def _libc_madvise():
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # no C library to ask: pages stay mapped, nothing breaks
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return madvise


_MADVISE = _libc_madvise()
_MADV_DONTNEED = 4  # Linux and macOS


def _release(pieces: list[torch.Tensor]) -> None:
    """Drop the mapped pages under ``pieces`` (views into a file mapping of ``torch.load(mmap=True)``)
    from this process's memory; the file still backs them, so a later read sees the same bytes."""
    if _MADVISE is None:
        return
    for piece in pieces:
        start = piece.data_ptr()
        low = start - start % mmap.PAGESIZE
        _MADVISE(low, start + piece.numel() * piece.element_size() - low, _MADV_DONTNEED)


@functools.cache
def _deepspeed_types() -> list[type]:
    """``DEEPSPEED_GLOBALS`` imported (DeepSpeed is imported on the first load only)."""
    return [
        getattr(importlib.import_module(module), name)
        for module, _, name in (g.rpartition(".") for g in DEEPSPEED_GLOBALS)
    ]


def _load(path: Path) -> dict:
    """``path`` unpickled with ``weights_only=True`` (``DEEPSPEED_GLOBALS`` allowed);
    ``UserError`` naming the file and the first other object it holds."""
    try:
        with torch.serialization.safe_globals(_deepspeed_types()):
            return torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as err:
        found = _GLOBAL.search(str(err))
        what = found.group(1) if found else str(err).splitlines()[0]
        raise UserError(
            f"{path}: refused to load: it holds {what}, not only tensors and DeepSpeed's "
            "checkpoint records (loading it could run code; use checkpoints from a trusted run)"
        ) from None


def _by_rank(ds_dir: Path, kind: str) -> list[Path]:
    files = ds_dir.glob(f"*zero_pp_rank_*_mp_rank_00_{kind}_states.pt")  # bf16_... in bf16 runs
    return sorted(files, key=lambda p: int(_RANK.search(p.name).group(1)))


def _span(parts: list[torch.Tensor], start: int, length: int) -> list[torch.Tensor]:
    """Views covering ``[start, start + length)`` of the concatenation of the 1-D ``parts``."""
    views = []
    for part in parts:
        if length <= 0:
            break
        if start < part.numel():
            take = min(length, part.numel() - start)
            views.append(part.narrow(0, start, take))
            length -= take
            start = 0
        else:
            start -= part.numel()
    return views


class ZeroWeights:
    """Full-size tensors by parameter/buffer name (``model.state_dict()`` names of the trained
    module, a ``PeftModel``'s included); ``names`` lists them, ``read`` assembles one."""

    def __init__(self, ds_dir: str | Path) -> None:
        ds_dir = Path(ds_dir)
        optim_files = _by_rank(ds_dir, "optim")
        model_files = _by_rank(ds_dir, "model") or [ds_dir / "mp_rank_00_model_states.pt"]
        if not model_files[0].is_file():
            raise FileNotFoundError(f"{ds_dir}: no DeepSpeed model states (*_model_states.pt)")
        models = [_load(f) for f in model_files]
        self._pieces: dict[str, tuple[list[torch.Tensor], int, torch.Size]] = {}
        """name -> (pieces in order, start in their concatenation, shape)."""
        if not optim_files:  # ZeRO-0: every value in rank 0's module state
            self._whole = models[0]["module"]
            self._aliases: dict[str, str] = {}
            return
        self._whole = {k: models[0]["module"][k] for k in models[0]["buffer_names"]}
        self._aliases = dict(models[0]["shared_params"])
        optims = [_load(f)["optimizer_state_dict"] for f in optim_files]
        world = optims[0]["partition_count"]
        world = max(world) if isinstance(world, list) else world
        if world != len(optim_files):
            raise ValueError(f"{ds_dir}: {len(optim_files)} optimizer files for {world} ranks")
        if optims[0]["zero_stage"] == 3:
            self._index_zero3(models, [o[ZERO3_WEIGHTS] for o in optims])
        else:
            flat = [o[ZERO12_WEIGHTS] for o in optims]
            self._index_zero12(models[0], flat, optims[0].get("param_alignment_paddings"))

    def _index_zero3(self, models: list[dict], flat: list[list[torch.Tensor]]) -> None:
        world = len(flat)
        for name, shape in (models[0].get("frozen_param_shapes") or {}).items():
            self._pieces[name] = ([m["frozen_param_fragments"][name] for m in models], 0, shape)
        offset = 0
        for shapes in models[0]["param_shapes"]:
            for name, shape in shapes.items():
                part = math.ceil(shape.numel() / world)
                pieces = [v for rank in flat for v in _span(rank, offset, part)]
                self._pieces[name] = (pieces, 0, shape)
                offset += part

    def _index_zero12(
        self, model: dict, flat: list[list[torch.Tensor]], paddings: list[list[int]] | None
    ) -> None:
        for name, shape in (model.get("frozen_param_shapes") or {}).items():
            self._pieces[name] = ([model["frozen_param_fragments"][name]], 0, shape)
        for g, shapes in enumerate(model["param_shapes"]):
            group = [rank[g] for rank in flat]
            offset = 0
            for i, (name, shape) in enumerate(shapes.items()):
                self._pieces[name] = (group, offset, torch.Size(shape))
                offset += math.prod(shape) + (paddings[g][i] if paddings else 0)

    def names(self) -> list[str]:
        return [*self._whole, *self._pieces, *self._aliases]

    def read(self, name: str) -> torch.Tensor:
        """The full tensor ``name`` (fp32 for trained parameters), owned by the caller."""
        name = self._aliases.get(name, name)
        if name in self._whole:
            tensor = self._whole[name]
            out = tensor.clone()
            _release([tensor])
            return out
        pieces, start, shape = self._pieces[name]
        views = _span([p.reshape(-1) for p in pieces], start, shape.numel())
        out = torch.cat(views).view(shape)
        _release(views)
        return out
