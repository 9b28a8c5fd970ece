"""`postroom fulltext on|off|status`: SQLite's full-text index of captured messages, a choice
per database (storage/fulltext.py has the figures).

    postroom fulltext on      # make it: searches of 3 characters or more stop scanning
    postroom fulltext off     # drop it: each message is stored without indexing its text
    postroom fulltext status

Off by default: kept in the transaction of each message, the index costs the capture door
about 0.1 ms of CPU per message (12-16% of its acceptance rate in the interleaved A/B of
bench/smtp_acceptance.py). `on` indexes every stored message in one transaction, during
which the server's writer waits: bench/search_million.py's 1,000,000 messages took 30 s of CPU
(100 s at a load average of 7) and grew the database from 886 MB to 1.2 GB. PostgreSQL always
keeps its own index (pg_trgm): these commands answer with an error there.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from postroom.config import Config

AddOptions = Callable[[argparse.ArgumentParser, tuple[str, ...]], None]
ConfigFrom = Callable[[argparse.Namespace], Config]

_WANTED = {"on": True, "off": False, "status": None}


def add_fulltext_commands(sub: Any, add_options: AddOptions, config_from: ConfigFrom) -> None:
    parser = sub.add_parser(
        "fulltext", help="SQLite: turn the full-text index of captured messages on or off"
    )
    parser.add_argument("action", choices=tuple(_WANTED), help="on, off or status")
    add_options(parser, ())

    def run(args: argparse.Namespace) -> int:
        from postroom.storage.engine import set_sqlite_fulltext

        present = set_sqlite_fulltext(config_from(args), _WANTED[args.action])
        print(f"full-text index: {'on' if present else 'off'}")
        return 0

    parser.set_defaults(func=run)
