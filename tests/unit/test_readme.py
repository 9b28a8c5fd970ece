"""Every configuration option is documented in the README."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from postroom.config import HELP, Config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_option_has_help_and_a_readme_row() -> None:
    text = README.read_text()
    for f in fields(Config):
        flag = "--" + f.name.replace("_", "-")
        assert f.name in HELP, f"{f.name} has no help text"
        assert f"`{flag}`" in text or f"`{flag}`," in text, f"{flag} is not in the README"
