"""Secrets kept out of everything ray_vlm writes or logs: config dumps (every ``config.yaml``),
tracker params, log lines and the lines the ``ray-vlm`` command prints.

What is masked (replaced by ``***``):

- the whole value of a config key (or mapping key, e.g. in ``processor_kwargs``) that names a
  credential (``SECRET_NAME``: ``api_key``, ``token``, ``secret_key``, ``password``, ...), when set;
  ``api_key_env`` names a variable, not a secret, and is kept;
- in any string: a URI's user info (``s3://KEY:SECRET@bucket/x`` -> ``s3://***@bucket/x``) and
  the values of credential query parameters (``s3://b/x?access_key=A&secret_key=S&region=r`` ->
  ``?access_key=***&secret_key=***&region=r``), as pyarrow and Ray Train URIs carry them.

A dumped config is a record, not a source: nothing reads a secret back from it. A run resumed
or consolidated from its ``config.yaml`` needs none of its secrets (consolidation reads the
model, export and distributed settings); a command that needs a key or a credential takes it
again from where it came from: the command line, the user's YAML, or the environment (e.g.
``auth.api_key_env``, ``AWS_*`` variables), so keep secrets there rather than in a dumped file.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

MASK = "***"
SECRET_NAME = re.compile(
    r"(^|[_-])(api_?key|access_?key(_id)?|secret(_?key)?|secret_access_key|password|passwd|"
    r"credentials?|signature|sig)$"
    r"|^((hf|access|auth|api|bearer|session|security|refresh|id|oauth|github|gh|wandb|"
    r"x-amz-security)[_-]?)?token$",
    re.IGNORECASE,
)
"""A key or query parameter name whose value is a secret (``X-Amz-Signature`` included); a
``token`` only alone or as a credential's (``hf_token``, ``X-Amz-Security-Token``): a processor's
``image_token`` or ``pad_token`` is a word of its vocabulary, kept."""
_USER_INFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#@\s:]+:[^@\s]*|[^/?#@\s]+)@")
"""``user@`` or ``user:password@`` after a scheme; the password may hold ``/`` (AWS secret keys
do, and users do not always percent-encode them)."""
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#\s]+)=([^&;#\s]*)")


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def mask_text(text: str) -> str:
    """``text`` with every URI's user info and credential query values masked."""
    text = _USER_INFO.sub(rf"\1{MASK}@", text)
    return _QUERY_PARAM.sub(
        lambda m: f"{m[1]}{m[2]}={MASK}" if is_secret_name(m[2]) and m[3] else m[0], text
    )


def mask_value(key: str, value: Any) -> Any:
    """``value`` of config key ``key`` with its secrets masked: all of it when ``key`` names a
    credential and the value is set, else the credentials in its strings (lists and mappings
    too, a mapping's values by their own keys)."""
    if value and isinstance(value, str | bytes) and is_secret_name(key):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value("", v) for v in value]
    return value


def _masking_factory(make: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it when the record is emitted
            return record
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return record

    factory.masks_secrets = True  # type: ignore[attr-defined]
    return factory


def install_log_masking() -> None:
    """From now on, every log record this process creates (any logger: ray_vlm's, Ray's,
    Serve's) has the credentials in its message masked (``mask_text``). Idempotent; tracebacks
    attached to a record are not rewritten."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "masks_secrets", False):
        logging.setLogRecordFactory(_masking_factory(current))


def say(text: object, file=None) -> None:
    """Print one line (stdout, or ``file``) with its credentials masked: every line ray_vlm's
    commands and its training driver print goes through here."""
    print(mask_text(str(text)), file=file or sys.stdout, flush=True)
