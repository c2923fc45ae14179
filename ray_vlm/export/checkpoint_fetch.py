"""A checkpoint in a bucket -> a local copy that consolidation reads, without optimizer moments.

DeepSpeed's optimizer files (``ds/*optim_states.pt``) hold the fp32 master weights, which
consolidation needs, and Adam's two moments, twice their size, which it does not. ``fetch_for_export``
copies every other file whole and each optimizer file as a sparse file of the same size that holds
only the bytes ``zero_files.ZeroWeights`` reads: the zip's directory and record headers, the
pickle, and the records of the master weights (``fp32_flat_groups`` under ZeRO-3,
``single_partition_of_fp32_groups`` under ZeRO-1/2). The rest stays a hole: not downloaded, no disk
used, never read (``torch.load(mmap=True)`` maps records without reading them). An 8B full
fine-tune's step downloads its 32 GB of fp32 weights, not 96 GB.

A torch checkpoint is a zip: ``<archive>/data.pkl`` names each tensor's storage by a key whose bytes
are the record ``<archive>/data/<key>``, stored uncompressed. The pickle is read here with an
unpickler that builds nothing: every class it names is a stand-in, so reading it runs no code from
the file.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

from ray_vlm.export.layout import CONSOLIDATED_DIR
from ray_vlm.storage import Location, StorageError
from ray_vlm.train.run_state import DS_TAG
from ray_vlm.train.zero_files import ZERO3_WEIGHTS, ZERO12_WEIGHTS

WEIGHT_KEYS = (ZERO3_WEIGHTS, ZERO12_WEIGHTS)
READ_BYTES = 64 << 20  # one ranged GET each: an 8B model's 32 GB of master weights in ~500
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length


class _Storage:
    def __init__(self, key: str) -> None:
        self.key = key


class _Stub(dict):
    """Whatever class or function the pickle names: takes any arguments, items and state and keeps
    them (a tensor's rebuild call keeps its storage among its arguments)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:
        stub = super().__new__(cls)
        stub.seen = list(args)
        return stub

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        self.seen.append(state)

    def append(self, item: Any) -> None:
        self.seen.append(item)

    def extend(self, items: Any) -> None:
        self.seen.extend(items)


class _Refs(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> _Storage:  # ("storage", type, key, location, numel)
        return _Storage(str(pid[2]))

    def find_class(self, module: str, name: str) -> type[_Stub]:
        return _Stub


def _storages(obj: Any) -> set[str]:
    if isinstance(obj, _Storage):
        return {obj.key}
    if isinstance(obj, _Stub):
        return _storages([*obj.values(), *obj.seen])
    if isinstance(obj, dict):
        return _storages(list(obj.values()))
    if isinstance(obj, (list, tuple)):
        return set().union(*map(_storages, obj)) if obj else set()
    return set()


def weight_keys(pickled: bytes) -> set[str]:
    """The storage keys of the master weights in an optimizer file's ``data.pkl``."""
    state = _Refs(io.BytesIO(pickled)).load()
    optim = state.get("optimizer_state_dict", {}) if isinstance(state, dict) else {}
    return _storages([optim.get(key) for key in WEIGHT_KEYS])


def _spans(remote: Any, archive: zipfile.ZipFile) -> list[tuple[int, int]]:
    """Byte ranges to copy: every record's header, the needed records' bytes, the directory."""
    infos = archive.infolist()
    pkl = next(i.filename for i in infos if i.filename.endswith("/data.pkl"))
    prefix = pkl.removesuffix("data.pkl") + "data/"
    needed = weight_keys(archive.read(pkl))
    spans = [(archive.start_dir, remote.size())]
    for info in infos:
        remote.seek(info.header_offset)
        _, name_len, extra_len = _LOCAL_HEADER.unpack(remote.read(_LOCAL_HEADER.size))
        data_at = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        key = info.filename.removeprefix(prefix) if info.filename.startswith(prefix) else None
        keep = key is None or key in needed
        spans.append((info.header_offset, data_at + info.compress_size if keep else data_at))
    return spans


def fetch_weights_only(source: Location, dest: Path) -> None:
    """``source`` (a torch zip checkpoint) as a sparse local file holding only the master weights
    and what ``torch.load`` reads to find them."""
    with source.fs.open_input_file(source.path) as remote, open(dest, "wb") as out:
        out.truncate(remote.size())
        with zipfile.ZipFile(remote) as archive:
            spans = _spans(remote, archive)
        for start, end in spans:
            remote.seek(start)
            out.seek(start)
            while start < end:
                block = remote.read(min(READ_BYTES, end - start))
                if not block:
                    raise StorageError(f"{source}: ends at byte {start}, its zip says {end}")
                out.write(block)
                start += len(block)


def fetch_for_export(step: Location, dest: Path) -> None:
    """Fill ``dest`` with what consolidating the step dir ``step`` reads (see the module doc)."""
    step.download(dest, skip=(CONSOLIDATED_DIR, DS_TAG))
    ds = step / DS_TAG
    optim = [e for e in ds.iterdir() if e.name.endswith("optim_states.pt")]
    ds.download(dest / DS_TAG, skip=tuple(e.name for e in optim))
    for entry in optim:
        fetch_weights_only(entry, dest / DS_TAG / entry.name)
