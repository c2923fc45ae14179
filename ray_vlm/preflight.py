"""Fail fast on what a command cannot reach, on the driver before Ray or any heavy library starts.

``check_model_source(source, key)``: a local path must exist, a URI must answer
(``storage.reach``), a hub id must be loadable: found in the local Hugging Face cache, or its
``config.json`` answered by one HEAD request to the hub (no retries, ``HUB_TIMEOUT_S``). Otherwise
``UserError`` names ``key``, the source and the fix (a typo, a gated repo without ``HF_TOKEN``, no
network). Without this, every Ray actor loading the model retries for minutes, then a traceback.
``check_finetune(cfg)``: the same for a fine-tune's ``dump_dir``, model, datamix and validation
datamix (``eval.datamix``: its names in the registry, no annotation file shared with
``data.datamix``, so validation records are never trained on).

A cross-cutting module with light imports only (no torch, Ray or transformers): the CLI runs these
checks before importing a stage, so a command that cannot start ends within seconds.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    RepositoryNotFoundError,
)

from ray_vlm.config import ConfigError, FinetuneConfig, UserError
from ray_vlm.records import DatamixEntry, DatasetSpec, select_datamix
from ray_vlm.storage import is_uri, reach

HUB_TIMEOUT_S = 10.0


def check_hub_model(repo_id: str, key: str) -> None:
    """Raise ``UserError`` unless the hub model ``repo_id`` can be loaded from here."""
    try:
        if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
            return
    except HFValidationError:
        raise UserError(f"{key}={repo_id}: not a local path and not a hub id (org/name)") from None
    if constants.HF_HUB_OFFLINE:
        raise UserError(
            f"{key}={repo_id}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
            "download it first (`hf download REPO`) or give a local model directory"
        )
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, "config.json"), timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        raise UserError(
            f"{key}={repo_id}: a gated model; accept its terms on huggingface.co and set HF_TOKEN "
            "(on a cluster, on every node: cluster.yaml passes it)"
        ) from None
    except RepositoryNotFoundError:
        raise UserError(
            f"{key}={repo_id}: no such model on the Hugging Face hub (a typo? a private model "
            "needs HF_TOKEN)"
        ) from None
    except EntryNotFoundError:
        raise UserError(f"{key}={repo_id}: has no config.json, not a transformers model") from None
    except Exception as err:  # network: DNS, refused, timeout, proxy, TLS
        raise UserError(
            f"{key}={repo_id}: the Hugging Face hub cannot be reached ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}); check the network (or "
            "HF_ENDPOINT), or give a local model directory"
        ) from None


def hub_id_shaped(source: str) -> bool:
    """Whether a name that is no local path could be a hub id (``name`` or ``org/name``)."""
    return not source.startswith(("/", ".", "~")) and source.count("/") <= 1


def check_model_source(source: str, key: str) -> None:
    """Raise ``UserError`` unless ``source`` (local path, URI or hub id) can be reached."""
    if is_uri(source):
        reach(source, key)
    elif Path(source).expanduser().exists():
        return
    elif not hub_id_shaped(source):
        raise UserError(f"{key}={source}: no such directory (and not a hub id like org/name)")
    else:
        check_hub_model(source, key)


def check_init_model(source: str) -> None:
    """``checkpoint.init_ckpt_path``: loaded by every training worker and preprocessing actor
    itself, so a hub id or a folder every node sees (a bucket URI is for checkpoints and data)."""
    if is_uri(source):
        raise UserError(
            f"checkpoint.init_ckpt_path={source}: initial weights are not read from a URI; give a "
            "hub id or a folder every node mounts"
        )
    check_model_source(source, "checkpoint.init_ckpt_path")


Sources = list[tuple[DatamixEntry, DatasetSpec]]


def check_validation(cfg: FinetuneConfig, train: Sources) -> Sources:
    """The sources of ``eval.datamix`` (none when empty); ``ConfigError`` naming ``eval.datamix``
    for a name not in the registry or a source whose annotation file ``train`` reads too."""
    if not cfg.eval.datamix:
        return []
    try:
        sources = select_datamix(cfg.eval.datamix, cfg.data.datasets_yaml)
    except ConfigError as err:
        raise ConfigError(f"key 'eval.datamix': {err}") from None
    trained = {spec.annotation: entry.name for entry, spec in train}
    for entry, spec in sources:
        if spec.annotation in trained:
            raise ConfigError(
                f"key 'eval.datamix': '{entry.name}' reads {spec.annotation}, which data.datamix "
                f"trains on (as '{trained[spec.annotation]}'); validate on held-out records only"
            )
    return sources


def check_finetune(cfg: FinetuneConfig) -> tuple[Sources, Sources]:
    """What a fine-tune must reach: ``dump_dir``, the model, the datamix and the validation
    datamix; returns the sources of both (``check_validation``)."""
    reach(cfg.dump_dir, "dump_dir")
    check_init_model(cfg.checkpoint.init_ckpt_path)
    train = select_datamix(cfg.data.datamix, cfg.data.datasets_yaml)
    return train, check_validation(cfg, train)
