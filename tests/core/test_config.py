from __future__ import annotations

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
