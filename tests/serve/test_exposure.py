"""Safe by default: a server reachable from other machines needs an API key (or
``auth.allow_unauthenticated``), from ``ray-vlm serve`` and from a Serve config file."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray import serve
from ray.serve import Application

from ray_vlm.cli import main
from ray_vlm.config.loader import ConfigError
from ray_vlm.config.serve_schema import AuthConfig, ServeConfig, is_loopback
from ray_vlm.serve import build_app, start_serve
from ray_vlm.serve.app import build_application
from ray_vlm.serve.server import free_loopback_port
from tests.serve.conftest import serve_session

KEY_ENV = "RAY_VLM_API_KEY"


def test_only_loopback_addresses_count_as_private(monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "myhost"))
    with pytest.raises(ConfigError, match=f"auth.api_key or the environment variable {KEY_ENV}"):
        AuthConfig().check_exposure("0.0.0.0")
    AuthConfig(api_key="k").check_exposure("0.0.0.0")
    AuthConfig(allow_unauthenticated=True).check_exposure("0.0.0.0")
    monkeypatch.setenv(KEY_ENV, "k")
    AuthConfig().check_exposure("0.0.0.0")


def test_ray_vlm_serve_on_a_public_host_without_a_key_exits_2(
    demo_assets: Path, monkeypatch, capsys
) -> None:
    """Refused on the driver before Ray or the model is touched: one line naming the key."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    ckpt = str(demo_assets / "models" / "llava")
    assert main(["serve", "--ckpt", ckpt, "host=0.0.0.0", "port=1"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ray-vlm serve: key 'host': 0.0.0.0") and KEY_ENV in line, line
    assert "auth.allow_unauthenticated=true" in line


@pytest.mark.usefixtures("ray_local")
def test_a_serve_config_file_on_a_public_host_needs_a_key(demo_assets: Path, monkeypatch) -> None:
    """``build_app`` (a config file's ``import_path``) reads the host Serve's proxies bind."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    args = {"ckpt": str(demo_assets / "models" / "llava")}
    with serve_session():
        start_serve({"host": "0.0.0.0", "port": free_loopback_port()})
        with pytest.raises(ConfigError, match="0.0.0.0 is reachable from other machines"):
            build_app(args)
        assert isinstance(build_app({**args, "auth": {"allow_unauthenticated": True}}), Application)
        assert isinstance(build_app({**args, "auth": {"api_key": "k"}}), Application)


def test_a_front_without_the_drivers_key_does_not_start(demo_assets: Path, monkeypatch) -> None:
    """The key is read again where requests arrive: one set only where the command ran (not in
    the replicas' environment) leaves no open front behind: its deployment fails."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    cfg = ServeConfig(ckpt=str(demo_assets / "models" / "llava"), app_name="exposure_check")
    with serve_session():
        start_serve({"host": "0.0.0.0", "port": free_loopback_port()})
        monkeypatch.setenv(KEY_ENV, "k")  # the driver's: the cluster's processes started without
        cfg.auth.check_exposure("0.0.0.0")  # so the driver's own check passes
        with pytest.raises(
            RuntimeError, match=r"Failed to update the deployments \['OpenAIIngress'\]"
        ):
            serve.run(build_application(cfg), name=cfg.app_name, route_prefix="/exposure")
