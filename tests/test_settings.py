"""Configuration: ``build_settings`` from app config and an environment mapping, validated once;
bad values stop start-up with a message naming the key and the value."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tablerest import ConfigurationError, Settings
from tablerest.extension import state_of
from tablerest.settings import build_settings, load_environment
from testapp import create_app


def test_defaults() -> None:
    settings = build_settings({}, {})
    assert settings == Settings()
    assert settings.database_url == "sqlite:///tablerest.db"
    assert (settings.default_limit, settings.max_limit) == (20, 100)
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.token_ttl == 3600
    assert settings.secret_key is None
    assert settings.binds == {}


def test_settings_are_frozen() -> None:
    settings = build_settings({}, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_limit = 5  # type: ignore[misc]


@pytest.mark.parametrize(("url", "expected"), [
    ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
    ("postgresql://u@db/app?sslmode=require", "postgresql+psycopg://u@db/app?sslmode=require"),
    ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
    ("postgresql+psycopg2://u@db/app", "postgresql+psycopg2://u@db/app"),
    ("sqlite:///data/app.db", "sqlite:///data/app.db"),
], ids=["postgres-heroku-style", "postgresql", "psycopg-already", "other-driver-kept", "sqlite"])
def test_database_url_is_normalised(url: str, expected: str) -> None:
    assert build_settings({}, {"DATABASE_URL": url}).database_url == expected
    assert build_settings({"DATABASE_URL": url}, {}).database_url == expected


@pytest.mark.parametrize(("config", "environ", "expected"), [
    ({"DATABASE_URL": "sqlite:///config.db"}, {"DATABASE_URL": "sqlite:///env.db"},
     "sqlite:///env.db"),
    ({"SQLALCHEMY_DEFAULT": "sqlite:///default.db"}, {}, "sqlite:///default.db"),
    ({"SQLALCHEMY_DEFAULT": "sqlite:///default.db"}, {"DATABASE_URL": "sqlite:///env.db"},
     "sqlite:///env.db"),
    ({"SQLALCHEMY_DATABASE_URI": "sqlite:///flask-sqlalchemy.db"}, {},
     "sqlite:///flask-sqlalchemy.db"),
    ({}, {"FLASK_CONFIG_PREFIXES": "SQLALCHEMY", "SQLALCHEMY_DEFAULT": "postgres://h/db"},
     "postgresql+psycopg://h/db"),
], ids=["environment-wins", "sqlalchemy-default", "database-url-over-default",
        "flask-sqlalchemy-uri", "default-from-environment"])
def test_which_database(config: dict[str, Any], environ: dict[str, str], expected: str) -> None:
    assert build_settings(config, environ).database_url == expected


def test_integers_are_read_from_the_environment() -> None:
    settings = build_settings({"TABLEREST_MAX_LIMIT": 10}, {
        "TABLEREST_TOKEN_TTL": "60", "TABLEREST_MAX_BODY": "2048",
        "TABLEREST_DEFAULT_LIMIT": "5", "TABLEREST_MAX_LIMIT": "30",
        "TABLEREST_SQLITE_BUSY_TIMEOUT": "0", "TABLEREST_SQLITE_WAL": "off",
    })
    assert (settings.token_ttl, settings.max_body_bytes, settings.default_limit,
            settings.max_limit, settings.sqlite_busy_timeout_ms, settings.sqlite_wal) == (
        60, 2048, 5, 30, 0, False)


@pytest.mark.parametrize(("key", "value"), [
    ("TABLEREST_MAX_LIMIT", "abc"),
    ("TABLEREST_MAX_LIMIT", ""),
    ("TABLEREST_TOKEN_TTL", "1.5"),
    ("TABLEREST_TOKEN_TTL", "0"),
    ("TABLEREST_MAX_BODY", "1MB"),
    ("TABLEREST_DEFAULT_LIMIT", "-1"),
    ("TABLEREST_SQLITE_BUSY_TIMEOUT", "-5"),
    ("TABLEREST_SQLITE_WAL", "maybe"),
], ids=["word", "empty", "float", "zero-ttl", "unit", "negative", "negative-timeout",
        "not-a-boolean"])
def test_bad_values_name_the_key_and_the_value(key: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_settings({}, {key: value})
    message = str(caught.value)
    assert key in message
    assert repr(value) in message or f"got {value}" in message


def test_default_limit_above_the_maximum_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_settings({}, {"TABLEREST_DEFAULT_LIMIT": "50", "TABLEREST_MAX_LIMIT": "10"})
    assert "TABLEREST_DEFAULT_LIMIT" in str(caught.value)
    assert "TABLEREST_MAX_LIMIT" in str(caught.value)


def test_a_short_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_settings({}, {"TABLEREST_SECRET_KEY": "hunter2"})
    assert "TABLEREST_SECRET_KEY" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    secret = "s" * 16
    assert build_settings({}, {"TABLEREST_SECRET_KEY": secret}).secret_key == secret


def test_config_prefixes_copy_listed_variables_only() -> None:
    config: dict[str, Any] = {"AWS_REGION": "from-config", "KEEP": 1}
    load_environment(config, {
        "FLASK_CONFIG_PREFIXES": " sqlalchemy , AWS ",
        "AWS_REGION": "eu-west-1", "AWS_BUCKET": "media", "SQLALCHEMY_ECHO": "true",
        "AWSOME_THING": "no", "HOME": "/root", "TABLEREST_TOKEN_TTL": "60",
        "DATABASE_URL": "sqlite:///env.db",
    })
    assert config == {"AWS_REGION": "eu-west-1", "AWS_BUCKET": "media", "KEEP": 1,
                      "SQLALCHEMY_ECHO": "true", "TABLEREST_TOKEN_TTL": "60",
                      "DATABASE_URL": "sqlite:///env.db"}


def test_sqlalchemy_variables_bind_extra_databases() -> None:
    settings = build_settings({"SQLALCHEMY_BINDS": {"audit": "postgresql://h/audit"}}, {
        "FLASK_CONFIG_PREFIXES": "SQLALCHEMY",
        "SQLALCHEMY_REPORTS": "postgres://u@h/reports",
        "SQLALCHEMY_ARCHIVE": "sqlite:///archive.db",
        "SQLALCHEMY_TRACK_MODIFICATIONS": "false",
        "SQLALCHEMY_DATABASE_URI": "sqlite:///main.db",
        "SQLALCHEMY_DEFAULT": "sqlite:///main.db",
    })
    assert settings.binds == {"reports": "postgresql+psycopg://u@h/reports",
                              "archive": "sqlite:///archive.db",
                              "audit": "postgresql+psycopg://h/audit"}
    assert settings.database_url == "sqlite:///main.db"


def test_sqlalchemy_variables_need_the_prefix_listed() -> None:
    settings = build_settings({}, {"SQLALCHEMY_REPORTS": "sqlite:///reports.db"})
    assert settings.binds == {}


# -- on an app ---------------------------------------------------------------------------------


def test_the_environment_configures_the_app(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLEREST_MAX_LIMIT", "7")
    monkeypatch.setenv("TABLEREST_DEFAULT_LIMIT", "3")
    app = create_app(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        settings = state_of(app).settings
        assert (settings.max_limit, settings.default_limit) == (7, 3)
    finally:
        state_of(app).engine.dispose()


def test_config_prefixes_reach_the_app_config(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_CONFIG_PREFIXES", "SQLALCHEMY,AWS")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("SQLALCHEMY_REPORTS", f"sqlite:///{tmp_path / 'reports.db'}")
    app = create_app(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        assert app.config["AWS_REGION"] == "eu-west-1"
        assert state_of(app).settings.binds == {"reports": f"sqlite:///{tmp_path / 'reports.db'}"}
    finally:
        state_of(app).engine.dispose()


def test_a_bad_environment_stops_the_app(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLEREST_MAX_BODY", "lots")
    with pytest.raises(ConfigurationError, match="TABLEREST_MAX_BODY"):
        create_app(f"sqlite:///{tmp_path / 'app.db'}")
