"""Access to the hand-written messages in tests/fixtures."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def all_fixtures() -> list[str]:
    return sorted(path.name for path in FIXTURES.glob("*.eml"))
