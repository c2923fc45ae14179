"""An S3 API on loopback for the storage tests: moto's standalone server (``ThreadedMotoServer``)
with the standard AWS variables pointing every client at it (``AWS_ENDPOINT_URL``, test keys), set
before any Ray cluster these tests start, so Ray workers reach the same bucket."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ray_vlm.storage import Location

BUCKET = "ray-vlm-test"
DEMO_SETS = {
    "demo_captions": "train.jsonl",
    "demo_vqa": "vqa_train.jsonl",
    "demo_captions_test": "test.jsonl",
}


@dataclass(frozen=True)
class S3:
    endpoint: str

    def uri(self, key: str) -> str:
        return f"s3://{BUCKET}/{key}"


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield S3(endpoint)
    server.stop()


@pytest.fixture(scope="session")
def s3_registry(s3: S3, demo_assets: Path) -> str:
    """The demo PLM data (annotations and images) in the bucket, and a registry in the bucket
    naming it by URI; returns the registry's URI."""
    shapes = demo_assets / "data/plm/shapes"
    data = Location.of(s3.uri("data/shapes")).upload(shapes)
    registry = {
        name: {"annotation": str(data / file), "root_dir": str(data / "images")}
        for name, file in DEMO_SETS.items()
    }
    path = Location.of(s3.uri("datasets.yaml"))
    path.write_text(yaml.safe_dump(registry))
    return path.uri
