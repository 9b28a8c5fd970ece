"""Functions of the UI's pure modules (no DOM) run in Node, for tests that hold them equal to
the server's Python side. Tests using it skip where Node is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from postroom.web.routes import STATIC_DIR

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def run_module(module: str, calls: list[tuple[str, list[Any]]], tz: str = "UTC") -> list[Any]:
    """Each (function, arguments) of static/`module` called in Node (in time zone `tz`; an
    argument {"date": "<ISO>"} is passed as a Date); their results, in order."""
    assert NODE is not None
    script = (
        f"import * as m from {json.dumps((STATIC_DIR / module).as_uri())};\n"
        "const arg = (a) => (a && typeof a === 'object' && 'date' in a ? new Date(a.date) : a);\n"
        "let input = '';\n"
        "process.stdin.on('data', (chunk) => { input += chunk; });\n"
        "process.stdin.on('end', () => {\n"
        "  const out = JSON.parse(input).map(([name, args]) => m[name](...args.map(arg)));\n"
        "  process.stdout.write(JSON.stringify(out));\n"
        "});\n"
    )
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "TZ": tz},
    )
    results: list[Any] = json.loads(done.stdout)
    return results
