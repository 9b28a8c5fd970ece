"""Where `open_store` goes: data directories, SQLite and PostgreSQL URLs, bad URLs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from postroom.core.errors import ConfigError
from postroom.storage import resolve_target


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str = ""


def test_data_directory_means_sqlite_file(tmp_path: Path) -> None:
    target = resolve_target(tmp_path / "data")
    assert target.sqlite_path == tmp_path / "data" / "postroom.db"
    assert target.url.drivername == "sqlite"
    assert target.url.database == str(tmp_path / "data" / "postroom.db")


def test_settings_prefer_the_database_url(tmp_path: Path) -> None:
    assert resolve_target(Settings(tmp_path)).sqlite_path == tmp_path / "postroom.db"
    pg = resolve_target(Settings(tmp_path, "postgresql://u:p@db.example:5433/mail"))
    assert pg.sqlite_path is None
    assert pg.url.drivername == "postgresql+psycopg"
    assert (pg.url.host, pg.url.port, pg.url.database, pg.url.password) == (
        "db.example",
        5433,
        "mail",
        "p",
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u@h/db",
        "postgresql://u@h/db",
        "postgresql+psycopg://u@h/db",
        "POSTGRES://u@h/db",
    ],
)
def test_postgres_urls_use_psycopg(url: str) -> None:
    target = resolve_target(url)
    assert target.url.drivername == "postgresql+psycopg"
    assert target.url.database == "db"


def test_sqlite_url(tmp_path: Path) -> None:
    target = resolve_target(f"sqlite:///{tmp_path}/x.db")
    assert target.sqlite_path == tmp_path / "x.db"


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db", "postgresql+psycopg2://u@h/db"]
)
def test_unusable_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        resolve_target(url)
