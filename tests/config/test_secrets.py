"""Secrets masked in config dumps, tracker params, log records and the command's lines; a dumped
config still loads (a record, not a source of the secrets)."""

from __future__ import annotations

import logging
from pathlib import Path

from ray_vlm.cli import main
from ray_vlm.config import CONFIG_FILE, FinetuneConfig, config_to_yaml, load_config, save_config
from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.config.loader import config_from_dict
from ray_vlm.config.secrets import MASK, install_log_masking, mask_text
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.train.tracking import flat_params

SECRET, KEY_ID = "wJalr/XUtnFEMI+K7MDENG", "AKIAEXAMPLE"
S3_USERINFO = f"s3://{KEY_ID}:{SECRET}@bucket/runs/a"
S3_QUERY = f"s3://bucket/runs/a?region=eu&access_key={KEY_ID}&secret_key={SECRET}"


def test_credentials_in_uris_are_masked_and_the_rest_kept() -> None:
    assert mask_text(S3_USERINFO) == "s3://***@bucket/runs/a"
    assert mask_text(S3_QUERY) == "s3://bucket/runs/a?region=eu&access_key=***&secret_key=***"
    presigned = "https://h/x.png?X-Amz-Credential=c&X-Amz-Signature=s&X-Amz-Security-Token=t&v=1"
    assert mask_text(presigned) == (
        "https://h/x.png?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***&v=1"
    )
    nested = "s3://b/x?endpoint_override=http://user:pw@127.0.0.1:9000"
    assert mask_text(nested) == "s3://b/x?endpoint_override=http://***@127.0.0.1:9000"
    plain = "/data/a.png s3://bucket/a@2x.png a@b.com http://127.0.0.1:8000/v1?max_tokens=5"
    assert mask_text(plain) == plain


def test_an_evaluation_config_dump_holds_no_key_and_still_loads(tmp_path: Path) -> None:
    serve = {"ckpt": S3_QUERY, "auth": {"api_key": "sk-live-123", "api_key_env": "MY_KEY"}}
    cfg = EvalConfig(ckpt=S3_USERINFO, serve=config_from_dict(ServeConfig, serve, "t"))
    text = config_to_yaml(cfg)
    assert "sk-live-123" not in text and SECRET not in text and KEY_ID not in text
    assert f"api_key: '{MASK}'" in text and "api_key_env: MY_KEY" in text
    path = save_config(cfg.serve, tmp_path / CONFIG_FILE)  # ServeConfig: no paths to resolve
    loaded = load_config(ServeConfig, [f"config={path}"])
    assert loaded.auth.api_key == MASK and loaded.ckpt == mask_text(S3_QUERY)
    assert loaded.batching == cfg.serve.batching and loaded.limits == cfg.serve.limits


def test_tracker_params_hold_no_credentials() -> None:
    cfg = FinetuneConfig(dump_dir=S3_QUERY)
    cfg.logging.mlflow_tracking_uri = f"https://bob:{SECRET}@mlflow.example.com"
    params = flat_params(cfg)
    assert not [k for k, v in params.items() if SECRET in v or KEY_ID in v]
    assert params["logging.mlflow_tracking_uri"] == "https://***@mlflow.example.com"
    assert params["dump_dir"] == mask_text(S3_QUERY)


def test_log_records_are_masked_once_installed(caplog) -> None:
    install_log_masking()
    install_log_masking()  # idempotent: one factory
    with caplog.at_level(logging.INFO):
        logging.getLogger("ray_vlm.test").info("checkpoint at %s", S3_USERINFO)
    assert caplog.records[-1].getMessage() == "checkpoint at s3://***@bucket/runs/a"


def test_the_commands_error_line_is_masked(tmp_path: Path, capsys) -> None:
    ckpt = f"{tmp_path}/step?access_key={KEY_ID}&secret_key={SECRET}"
    assert main(["consolidate", "--ckpt", ckpt]) == 2
    err = capsys.readouterr().err
    assert "step?access_key=***&secret_key=***" in err and SECRET not in err and KEY_ID not in err


def test_a_processors_token_words_are_kept() -> None:
    """``image_token`` / ``pad_token`` name vocabulary, not credentials: a run re-run from its
    dumped ``config.yaml`` gets them back; ``hf_token`` and a bare ``token`` are masked."""
    kwargs = {"image_token": "<image>", "pad_token": "<pad>", "hf_token": "hf_abc", "token": "t"}
    cfg = load_config(FinetuneConfig, [f"model.processor_kwargs={kwargs}"])
    dumped = config_to_yaml(cfg)
    assert "image_token: <image>" in dumped and "pad_token: <pad>" in dumped
    assert "hf_abc" not in dumped and "token: t\n" not in dumped
