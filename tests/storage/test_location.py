"""``ray_vlm.storage.Location`` on a local folder and on S3 (moto on loopback), and the data path
on a bucket: registry, chunk index, chunk reads and images by URI."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest

from ray_vlm.preprocess.record_stream import read_chunk
from ray_vlm.preprocess.stream_plan import index_chunks
from ray_vlm.records import load_image, select_datamix
from ray_vlm.storage import Location, StorageError, reach
from tests.storage.conftest import S3


class _NoReport:
    """``read_chunk``'s report: these chunks are all valid, so it is never called."""


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path: Path) -> Location:
    if request.param == "local":
        return Location.of(tmp_path / "root")
    return Location.of(request.getfixturevalue("s3").uri(f"loc/{tmp_path.name}"))


def test_read_write_append_list_and_delete(root: Location) -> None:
    log = root / "run/train.log"
    assert not log.exists() and root.iterdir() == []
    log.append_text("one\n")
    log.append_text("two\n")
    (root / "run/a.bin").write_bytes(b"\x00\x01")
    assert log.read_text() == "one\ntwo\n" and log.is_file() and (root / "run").is_dir()
    assert log.read_range(4, 7) == b"two" and log.size() == 8
    assert list(log.iter_lines()) == [b"one\n", b"two\n"]
    assert [e.name for e in (root / "run").iterdir()] == ["a.bin", "train.log"]
    assert (root / "run").parent == root and log.name == "train.log"
    assert pickle.loads(pickle.dumps(log)).read_text() == "one\ntwo\n"
    (root / "run").delete()
    assert not log.exists()


def test_upload_download_and_local_copy(root: Location, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAY_VLM_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub/b.txt").write_text("b")
    (src / "skipped").mkdir()
    (src / "skipped/c.txt").write_text("c")
    folder = (root / "folder").upload(src)
    got = folder.download(tmp_path / "down", skip=("skipped",))
    assert sorted(str(p.relative_to(got)) for p in got.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
    copy = folder.local_copy(version="1")
    assert (copy / "sub/b.txt").read_text() == "b"
    if not root.is_local:
        assert copy.is_relative_to(tmp_path / "cache")
        (folder / "a.txt").write_text("changed")
        assert (folder.local_copy(version="1") / "a.txt").read_text() == "a"  # cached
        assert (folder.local_copy(version="2") / "a.txt").read_text() == "changed"


def test_uris_keep_their_query_and_local_paths_become_absolute(s3: S3, monkeypatch) -> None:
    monkeypatch.chdir("/tmp")
    assert Location.of("runs/a").uri == "/tmp/runs/a"
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # the endpoint travels in the URI instead
    run = Location.of(f"{s3.uri('q/run')}?endpoint_override={s3.endpoint}")
    child = run / "checkpoints/0000000001"
    assert child.uri == f"{s3.uri('q/run/checkpoints/0000000001')}?endpoint_override={s3.endpoint}"
    assert child.path == "ray-vlm-test/q/run/checkpoints/0000000001"
    child.write_text("x")
    assert child.parent.parent == run
    assert [e.name for e in (run / "checkpoints").iterdir()] == ["0000000001"]


def test_an_unreachable_storage_fails_fast_naming_the_key() -> None:
    started = time.perf_counter()
    with pytest.raises(StorageError, match=r"dump_dir=s3://nowhere/run\?endpoint_override=.*AWS"):
        reach("s3://nowhere/run?endpoint_override=http://127.0.0.1:9", "dump_dir")
    assert time.perf_counter() - started < 30


def test_a_registry_in_the_bucket_reads_like_a_local_one(
    s3_registry: str, demo_assets: Path
) -> None:
    ((_, remote),) = select_datamix("demo_captions:1", s3_registry)
    ((_, local),) = select_datamix("demo_captions:1", demo_assets / "datasets.yaml")
    assert remote.annotation.startswith("s3://") and remote.format == "plm"
    remote_chunks, local_chunks = index_chunks(remote), index_chunks(local)
    assert [(c.start, c.end, c.num_lines) for c in remote_chunks] == [
        (c.start, c.end, c.num_lines) for c in local_chunks
    ]
    rows = read_chunk(remote_chunks[0], _NoReport(), "fail")
    assert rows == [
        {**r, "source": r["source"].replace(local.annotation, remote.annotation),
         "images": [i.replace(local.root_dir, remote.root_dir) for i in r["images"]]}
        for r in read_chunk(local_chunks[0], _NoReport(), "fail")
    ]  # fmt: skip
    image = rows[0]["images"][0]
    assert image.startswith("s3://") and load_image(image).size == (64, 64)
    with pytest.raises(ValueError, match="does not exist"):
        load_image(str(Location.of(remote.root_dir) / "missing.png"))


def test_a_uri_whose_secret_holds_a_slash_is_refused_without_showing_it() -> None:
    """An AWS secret key may hold ``/``; unencoded in a URI, pyarrow cannot parse it and quotes
    the URI: the refusal names neither the key nor the secret."""
    with pytest.raises(StorageError) as refused:
        Location.of("s3://AKIAKEY:se/cret@bucket/runs/a").info()
    message = str(refused.value)
    assert message.startswith("s3://***: not a URI pyarrow can open") and "%2F" in message
    assert "AKIAKEY" not in message and "cret" not in message
