"""`postroom fulltext on|off|status`: SQLite's full-text index of captured messages, a choice
per database (storage/fulltext.py has the figures).

    postroom fulltext on      # make it: searches of 3 characters or more stop scanning
    postroom fulltext off     # drop it: each message is stored without indexing its text
    postroom fulltext status

On by default in a database made since migration 0027; a database made before keeps its
choice (`on` there builds it). Each message waits in a small list until the server's writer
process indexes the waiting ones in its pauses (searches test the waiting ones directly, so
nothing is missed): a burst of up to 20,000 messages is accepted at the rate without the index;
past that each batch indexes the 200 oldest (storage/fulltext.py has the figures of
bench/smtp_acceptance.py). `on` indexes every stored message in one transaction,
during which the server's writer waits:
bench/search_million.py's 1,000,000 messages took 20 s of CPU (45 s at a load average of 6)
and left a database of 1.27 GB (886 MB without the index). PostgreSQL always keeps its own index
(pg_trgm) for terms of 3 characters or more; there these commands make, drop or report its
index of 1-2 character terms, off by default since it costs the capture door ~0.26-0.29 ms of
PostgreSQL CPU per message (4 times the other index; storage/fulltext.py has the figures). `on`
builds it CONCURRENTLY, so the server keeps storing meanwhile (a million messages: 2-5 minutes).
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
        "fulltext",
        help="SQLite: turn the full-text index of captured messages on or off; PostgreSQL: "
        "its index of 1-2 character search terms",
    )
    parser.add_argument("action", choices=tuple(_WANTED), help="on, off or status")
    add_options(parser, ())

    def run(args: argparse.Namespace) -> int:
        from postroom.storage.engine import resolve_target, set_pg_short_index, set_sqlite_fulltext

        config = config_from(args)
        if resolve_target(config).sqlite_path is None:
            present = set_pg_short_index(config, _WANTED[args.action])
            print(f"index of 1-2 character terms: {'on' if present else 'off'}")
            return 0
        present = set_sqlite_fulltext(config, _WANTED[args.action])
        print(f"full-text index: {'on' if present else 'off'}")
        return 0

    parser.set_defaults(func=run)
