"""Checks for the outside services some tests need.

Each `require_*` skips the calling test with a reason starting "service unavailable:" when the
service is absent. Under CI=true such a skip is turned into a failure (see conftest.py), because
.ci/run provides every service.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

SKIP_PREFIX = "service unavailable:"
POSTGRES_URL = os.environ.get("POSTROOM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[2] / "shared"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_postgres() -> str:
    if not _port_open("127.0.0.1", 5432):
        pytest.skip(f"{SKIP_PREFIX} PostgreSQL is not listening on 127.0.0.1:5432")
    return POSTGRES_URL


def require_executable(name: str, path: str | None = None) -> str:
    found = path if path and os.access(path, os.X_OK) else shutil.which(name)
    if not found:
        pytest.skip(f"{SKIP_PREFIX} {name} is not installed (Debian package)")
    return found


def require_shared(relative: str) -> Path:
    target = SHARED / relative
    if not target.exists():
        pytest.skip(f"shared material absent: {target}")
    return target
