"""What the processor makes is what the model gets: ray_vlm's batch against the processor's own.

``own_batch(encoder, records)`` is the batch the model's processor makes of ``records`` by itself
(``processor(images=..., text=..., padding=True)``, right-padded as ray_vlm pads, ``labels`` from
the encoder, as the processor has no notion of answers; PaliGemma's processor makes its own).
``differences(ours, own)`` lists every key of the processor's batch that ray_vlm's batch
(``batching.collate`` of the encoded records) lacks or holds with another shape or value. Equal
tensors make an equal forward for any model, so an empty list is the contract.

``check_model_inputs(cfg, sources)`` runs it before Ray starts (``train``, ``check-data``): the
processor's layout places every key it returns (``layouts.check_keys``), a record with one image
fits ``data.max_seq_len`` (training pads image-less batches with one), and the first two records
of the datamix that have images give the processor's own batch; ``LayoutError`` (one line naming
the model type and the keys) otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice

import numpy as np
import torch
from transformers import AutoConfig

from ray_vlm.config import FinetuneConfig
from ray_vlm.preprocess.batching import collate, dummy_image_example
from ray_vlm.preprocess.encode import IGNORE, EncodeError, Encoder
from ray_vlm.preprocess.layouts import LayoutError
from ray_vlm.preprocess.processor import load_processor
from ray_vlm.preprocess.prompt import chat_messages
from ray_vlm.records import DatasetSpec, Record, load_image, read_records

Batch = dict[str, torch.Tensor]
CHECKED = 2
"""Records compared: two, so that padding and the joining of image rows are exercised."""
SCANNED = 64
"""Records read from each source at most to find them (text-only ones are passed over)."""


def own_batch(encoder: Encoder, records: Sequence[Record]) -> Batch:
    """The processor's own batch of ``records`` (each with at least one image)."""
    processor = encoder.processor
    images = [[load_image(p) for p in r.images] for r in records]
    kwargs = {}
    if encoder.style == "prefix_suffix":
        texts = [processor.image_token * len(r.images) + r.turns[0].text for r in records]
        kwargs["suffix"] = [r.turns[-1].text for r in records]  # it makes the labels
    else:
        render = processor.apply_chat_template
        texts = [render(chat_messages(r.turns, len(r.images)), tokenize=False) for r in records]
    own = processor(
        images=images, text=texts, padding=True, padding_side="right", return_tensors="pt", **kwargs
    )
    own = dict(own)
    if encoder.layout.tile_stacks:  # [images, tiles, ...]: the model flattens both axes
        own["pixel_values"] = own["pixel_values"].flatten(0, 1)[:, None]
    if "labels" not in own:
        labels = [torch.from_numpy(encoder.encode(r).labels) for r in records]
        own["labels"] = torch.nn.utils.rnn.pad_sequence(labels, True, IGNORE)
    return own


def differences(ours: Batch, own: Batch) -> list[str]:
    """Each key of ``own`` that ``ours`` lacks or holds differently: ``"key (why)"``; per-token
    values are compared on real tokens only (Mllama's processor extends a cross-attention mask
    over the padding, which no loss or attention reads)."""
    real = own["attention_mask"].bool()
    found = []
    for key, theirs in own.items():
        mine = ours.get(key)
        if mine is None:
            found.append(f"{key} (dropped)")
            continue
        if tuple(mine.shape) != tuple(theirs.shape):
            shapes = f"{tuple(mine.shape)}, the processor's {tuple(theirs.shape)}"
            found.append(f"{key} (shape {shapes})")
            continue
        if mine.dtype != theirs.dtype:
            found.append(f"{key} (dtype {mine.dtype}, the processor's {theirs.dtype})")
            continue
        if theirs.dim() >= 2 and theirs.shape[:2] == real.shape:
            mine, theirs = mine[real], theirs[real]
        if not np.allclose(mine.double().numpy(), theirs.double().numpy(), atol=1e-5):
            found.append(f"{key} (values differ)")
    return found


def _first_encodable(encoder: Encoder, specs: Iterable[DatasetSpec]) -> list[Record]:
    """The first ``CHECKED`` records with images that encode whole among the first ``SCANNED`` of
    each source (a record rejected or cut is check-data's to report)."""
    found: list[Record] = []
    for spec in specs:
        try:
            for record in islice(read_records(spec), SCANNED):
                if not isinstance(record, Record) or not record.images:
                    continue
                try:
                    if encoder.encode(record).truncated:
                        continue
                except EncodeError:
                    continue
                found.append(record)
                if len(found) == CHECKED:
                    return found
        except (OSError, ValueError):  # a source that cannot be read: check-data's to report
            continue
    return found


def check_model_inputs(cfg: FinetuneConfig, specs: Iterable[DatasetSpec]) -> None:
    """``LayoutError`` unless ray_vlm's batch of the first records with images equals the
    processor's own (and the processor's layout places every key it returns)."""
    path = cfg.checkpoint.init_ckpt_path
    model_type = AutoConfig.from_pretrained(path).model_type
    processor = load_processor(path, cfg.model.processor_kwargs)
    try:
        encoder = Encoder(processor, cfg.data.max_seq_len, cfg.data.max_image_pixels)
        dummy_image_example(encoder)  # what training appends to a batch without images
    except LayoutError as err:
        raise LayoutError(f"model type {model_type!r}: {err}") from None
    except EncodeError as err:
        raise LayoutError(
            f"model type {model_type!r}: a record with one image does not fit: {err}"
        ) from None
    records = _first_encodable(encoder, specs)
    if not records:
        return
    try:
        try:
            own = own_batch(encoder, records)
        except ValueError:  # it cannot batch these itself (Perception LM: tile counts differ)
            records = records[:1]
            own = own_batch(encoder, records)
    except Exception as err:  # the processor's own, of any type: one line
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        raise LayoutError(
            f"model type {model_type!r}: {type(processor).__name__} cannot batch "
            f"{records[0].source} by itself: {reason}"
        ) from None
    ours = collate([encoder.encode(r).row(r) for r in records], encoder)
    found = differences(ours, own)
    if found:
        raise LayoutError(
            f"model type {model_type!r}: ray_vlm's batch of {len(records)} records from "
            f"{records[0].source} on differs from {type(processor).__name__}'s own in {', '.join(found)}; this "
            "family's inputs would not reach the model as its processor makes them"
        )
