from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from passgate.config import ConfigError, load_settings


def test_defaults_serve_localhost() -> None:
    settings = load_settings({}, {})
    assert settings.rp_id == "localhost" and settings.port == 8000
    assert settings.allowed_origins == ("http://localhost:8000",)
    assert settings.database_url == "sqlite:///passgate.db"
    assert settings.secure_cookies is False


def test_flags_win_over_environment_over_file(tmp_path: Path) -> None:
    config = tmp_path / "passgate.toml"
    config.write_text('rp_id = "example.com"\nrp_name = "From file"\nport = 9000\norigins = ["https://example.com"]\n')
    settings = load_settings({"port": 9100}, {"PASSGATE_RP_NAME": "From env", "PASSGATE_PORT": "9050"}, config)
    assert settings.rp_id == "example.com"
    assert settings.rp_name == "From env"
    assert settings.port == 9100
    assert settings.secure_cookies is True


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"rp_id": "example.com", "origins": ["https://evil.com"]}, "neither the rp_id"),
        ({"rp_id": "example.com", "origins": ["http://example.com"]}, "must use https"),
        ({"rp_id": "Example.com"}, "lower-case domain"),
        ({"rp_id": "127.0.0.1"}, "domain name"),
        ({"origins": ["https://localhost/path"]}, "no path"),
        ({"user_verification": "sometimes"}, "user_verification"),
        ({"port": "eighty"}, "whole number"),
        ({"database_url": "mysql://x"}, "database_url"),
        ({"challenge_timeout_seconds": 5}, "between 30 and 3600"),
        ({"passwords": "on"}, "passwords must be 'off' or 'migrate'"),
        ({"forwarded_allow_ips": ["10.0.0.0/8", "proxy.internal"]}, "forwarded_allow_ips: 'proxy.internal'"),
    ],
)
def test_invalid_configuration_is_explained(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(flags, {})


def test_subdomain_origins_are_allowed() -> None:
    settings = load_settings({"rp_id": "example.com", "origins": ["https://login.example.com"]}, {})
    assert settings.allowed_origins == ("https://login.example.com",)


def test_unknown_environment_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="PASSGATE_RPID"):
        load_settings({}, {"PASSGATE_RPID": "x"})


def test_environment_origins_are_comma_separated() -> None:
    settings = load_settings(
        {}, {"PASSGATE_RP_ID": "example.com", "PASSGATE_ORIGINS": "https://example.com,https://a.example.com"}
    )
    assert settings.allowed_origins == ("https://example.com", "https://a.example.com")


# What a Kubernetes Service named "passgate" (cluster IP 10.0.0.5, port 8000 named http) puts in every pod.
SERVICE_LINKS = {
    "PASSGATE_SERVICE_HOST": "10.0.0.5",
    "PASSGATE_SERVICE_PORT": "8000",
    "PASSGATE_SERVICE_PORT_HTTP": "8000",
    "PASSGATE_PORT": "tcp://10.0.0.5:8000",
    "PASSGATE_PORT_8000_TCP": "tcp://10.0.0.5:8000",
    "PASSGATE_PORT_8000_TCP_PROTO": "tcp",
    "PASSGATE_PORT_8000_TCP_PORT": "8000",
    "PASSGATE_PORT_8000_TCP_ADDR": "10.0.0.5",
}


def test_kubernetes_service_links_are_ignored_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="passgate"):
        settings = load_settings({}, {**SERVICE_LINKS, "PASSGATE_RP_NAME": "Shop"})
    assert settings.port == 8000 and settings.rp_name == "Shop"
    assert settings.allowed_origins == ("http://localhost:8000",)
    [warning] = caplog.records
    for name in SERVICE_LINKS:
        assert name in warning.getMessage()
    assert "enableServiceLinks: false" in warning.getMessage()


def test_service_link_port_does_not_replace_the_configured_port() -> None:
    settings = load_settings({}, {**SERVICE_LINKS, "PASSGATE_PORT": "tcp://[fd00::5]:9000"})
    assert settings.port == 8000
    assert load_settings({}, {"PASSGATE_PORT": "9050"}).port == 9050


def test_no_warning_without_service_links(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="passgate"):
        load_settings({}, {"PASSGATE_PORT": "9050"})
    assert caplog.records == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PASSGATE_RPID", "example.com", "Unknown setting PASSGATE_RPID. Did you mean PASSGATE_RP_ID?"),
        ("PASSGATE_DATABASE_URI", "sqlite://", "Did you mean PASSGATE_DATABASE_URL?"),
        ("PASSGATE_PORT", "eighty", "port must be a whole number"),
        ("PASSGATE_PORT", "http://10.0.0.5:8000", "port must be a whole number"),
        ("PASSGATE_SERVICE_HOST", "passgate.default.svc", "Unknown setting PASSGATE_SERVICE_HOST"),
        ("PASSGATE_PORT_8000_TCP_PROTO", "http", "Unknown setting PASSGATE_PORT_8000_TCP_PROTO"),
    ],
)
def test_typos_are_refused_naming_the_closest_setting(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({}, {**SERVICE_LINKS, variable: value})


def test_unknown_file_setting_names_the_closest(tmp_path: Path) -> None:
    config = tmp_path / "passgate.toml"
    config.write_text('rp_nmae = "Shop"\n')
    with pytest.raises(ConfigError, match=re.escape("Unknown setting(s): rp_nmae. Did you mean rp_name?")):
        load_settings({}, {}, config)


def test_the_command_starts_with_service_links_and_refuses_a_typo() -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PASSGATE_")}
    command = [sys.executable, "-m", "passgate", "policy", "show"]
    shown = subprocess.run(command, env={**environment, **SERVICE_LINKS}, capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["user_verification"] == "preferred"
    [warning] = shown.stderr.splitlines()
    assert "PASSGATE_PORT_8000_TCP_ADDR" in warning and "enableServiceLinks: false" in warning
    typo = {**environment, **SERVICE_LINKS, "PASSGATE_RPID": "example.com"}
    refused = subprocess.run(command, env=typo, capture_output=True, text=True, check=False)
    assert refused.returncode == 2
    assert "Unknown setting PASSGATE_RPID. Did you mean PASSGATE_RP_ID?" in refused.stderr


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"workers": 2}, "workers is 2"),
        ({"redis_url": "redis://127.0.0.1:6379/0"}, "redis_url is set"),
        ({"database_url": "postgresql://db.internal/passgate"}, "database_url is a PostgreSQL database"),
    ],
)
def test_several_processes_need_a_secret_key(flags: dict[str, object], reason: str) -> None:
    with pytest.raises(ConfigError, match=rf"secret_key \(PASSGATE_SECRET_KEY\) must be set: {reason}"):
        load_settings(flags, {})
    assert load_settings(flags, {"PASSGATE_SECRET_KEY": "shared"}).secret_key == "shared"
    # Commands that serve nothing (migrate, events, policy) use no secret.
    assert load_settings(flags, {}, serving=False).secret_key


def test_one_process_draws_a_secret_key_when_unset() -> None:
    first, second = load_settings({}, {}), load_settings({}, {})
    assert first.secret_key and second.secret_key and first.secret_key != second.secret_key


def test_serving_workers_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    command = [
        sys.executable,
        "-m",
        "passgate",
        "serve",
        "--workers",
        "2",
        "--database-url",
        f"sqlite:///{tmp_path}/p.db",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60, check=False)
    assert result.returncode == 2 and "secret_key (PASSGATE_SECRET_KEY) must be set: workers is 2" in result.stderr
    assert not (tmp_path / "p.db").exists()


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_webhooks_come_from_the_file_with_their_secrets(tmp_path: Path) -> None:
    config = tmp_path / "passgate.toml"
    config.write_text(
        "webhooks_allow_private = true\nwebhook_retry_seconds = [1, 2.5]\n"
        f'[[webhooks]]\nurl = "https://crm.example.com/in"\nevents = ["passkey.*"]\nsecret = "{SECRET}"\n'
        'previous_secret = "whsec_b2xkIHNlY3JldCwgMjQgYnl0ZXMgbG9uZyEh"\n'
        f'[[webhooks]]\nurl = "https://all.example.com/in"\nsecret = "{SECRET}"\n'
    )
    settings = load_settings({}, {}, config)
    assert settings.webhooks_allow_private is True and settings.webhook_retry_seconds == (1.0, 2.5)
    crm, everything = settings.file_webhooks()
    assert crm["events"] == ("passkey.*",) and crm["secrets"] == (SECRET, "whsec_b2xkIHNlY3JldCwgMjQgYnl0ZXMgbG9uZyEh")
    assert everything["events"] == ("*",)
    assert load_settings({}, {}).webhooks_allow_private is False  # refused unless allowed
    from passgate.config import from_json, to_json

    handed_to_workers = from_json(to_json(settings))
    assert handed_to_workers.file_webhooks() == settings.file_webhooks()
    assert handed_to_workers.webhook_retry_seconds == (1.0, 2.5) and handed_to_workers.webhooks_allow_private
    environment = {"PASSGATE_WEBHOOKS_ALLOW_PRIVATE": "false", "PASSGATE_WEBHOOK_RETRY_SECONDS": "0.5,0.5"}
    from_environment = load_settings({}, environment)
    assert from_environment.webhooks_allow_private is False and from_environment.webhook_retry_seconds == (0.5, 0.5)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"url": "https://a.example/", "events": ["*"]}, "secret must be set"),
        ({"url": "https://a.example/", "secret": "hunter2"}, "whsec_"),
        ({"url": "ftp://a.example/", "secret": SECRET}, "https://host/path"),
        ({"url": "https://a.example/", "events": ["user.made"], "secret": SECRET}, "Unknown event type"),
        ({"url": "https://a.example/", "secret": SECRET, "headers": {}}, "unknown key(s) headers"),
    ],
)
def test_a_wrong_webhook_table_is_refused_naming_it(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        load_settings({"webhooks": [table]}, {})
    assert str(refused.value).startswith("webhooks[1]:")


def test_webhook_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="webhooks_allow_private must be true or false"):
        load_settings({}, {"PASSGATE_WEBHOOKS_ALLOW_PRIVATE": "maybe"})
    with pytest.raises(ConfigError, match="webhook_retry_seconds"):
        load_settings({}, {"PASSGATE_WEBHOOK_RETRY_SECONDS": "5,soon"})
    with pytest.raises(ConfigError, match="webhook_timeout_seconds"):
        load_settings({"webhook_timeout_seconds": 0}, {})
    with pytest.raises(ConfigError, match="Unknown setting PASSGATE_WEBHOOKS"):
        load_settings({}, {"PASSGATE_WEBHOOKS": "https://a.example/"})  # tables of the file only
