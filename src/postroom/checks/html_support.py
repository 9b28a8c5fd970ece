"""The mail client support table of the HTML check: which HTML and CSS features the main mail
clients render, read from a small text file (html_support.txt, format in its header; another
file with --html-check-data). Raises ConfigError naming the line of a bad file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from postroom.core.errors import ConfigError

DETECT_KINDS = frozenset(
    {"tag", "attr", "prop", "value", "func", "custom", "at", "pseudo", "image", "anchor"}
)
SUPPORT_WORDS = {"y": "yes", "n": "no", "p": "partial"}


@dataclass(frozen=True, slots=True)
class Client:
    key: str
    family: str
    platform: str
    version: str

    @property
    def name(self) -> str:
        return f"{self.family} {self.platform.replace('-', ' ')} {self.version}"


@dataclass(frozen=True, slots=True)
class Detect:
    """What in a message counts as using a feature (see html_support.txt)."""

    kind: str
    names: tuple[str, ...] = ()
    element: str = ""  # attr: the element (* any); value: the property


@dataclass(frozen=True, slots=True)
class Support:
    word: str  # yes, no, partial
    note: str = ""  # the note number of a partial


@dataclass(frozen=True, slots=True)
class Feature:
    slug: str
    category: str
    title: str
    detect: Detect
    support: tuple[Support, ...]  # one per client, in the table's order
    keywords: str
    notes: dict[str, str]


@dataclass(frozen=True, slots=True)
class SupportTable:
    clients: tuple[Client, ...]
    features: tuple[Feature, ...]


def _detect(text: str, where: str) -> Detect:
    words = text.split()
    if not words or words[0] not in DETECT_KINDS:
        raise ConfigError(f"{where}: unknown detection {text!r}")
    kind, rest = words[0], words[1:]
    if kind in ("custom", "anchor"):
        if rest:
            raise ConfigError(f"{where}: {kind} takes nothing more, got {text!r}")
        return Detect(kind)
    if kind in ("attr", "value"):
        if len(rest) != 2:
            raise ConfigError(f"{where}: {kind} needs two words, got {text!r}")
        return Detect(kind, tuple(rest[1].lower().split(",")), rest[0].lower())
    if len(rest) != 1:
        raise ConfigError(f"{where}: {kind} needs one comma-separated list, got {text!r}")
    return Detect(kind, tuple(rest[0].lower().split(",")))


def parse_table(text: str, source: str = "html_support.txt") -> SupportTable:
    clients: list[Client] = []
    rows: list[tuple[str, str, str, Detect, list[str], str]] = []
    notes: dict[str, dict[str, str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {number}"
        word, _, rest = line.partition(" ")
        fields = [f.strip() for f in rest.split(" | ")]
        if word == "client" and len(fields) == 4:
            clients.append(Client(*fields))
        elif word == "feature" and len(fields) == 6:
            slug, category, title, detect_text, tokens_text, keywords = fields
            rows.append(
                (slug, category, title, _detect(detect_text, where), tokens_text.split(), keywords)
            )
        elif word == "note" and len(fields) == 3:
            notes.setdefault(fields[0], {})[fields[1]] = fields[2]
        else:
            raise ConfigError(f"{where}: expected a client, feature or note row, got {line!r}")
    if not clients:
        raise ConfigError(f"{source}: no clients")
    features = []
    for slug, category, title, detect, tokens, keywords in rows:
        if len(tokens) != len(clients):
            raise ConfigError(
                f"{source}: feature {slug} has {len(tokens)} support values for "
                f"{len(clients)} clients"
            )
        feature_notes = notes.pop(slug, {})
        support: list[Support] = []
        for token in tokens:
            if token[:1] not in SUPPORT_WORDS or (token[0] != "p" and len(token) > 1):
                raise ConfigError(f"{source}: feature {slug}: bad support value {token!r}")
            note = token[1:]
            if note and note not in feature_notes:
                raise ConfigError(f"{source}: feature {slug} refers to note {note}, not given")
            support.append(Support(SUPPORT_WORDS[token[0]], note))
        features.append(
            Feature(slug, category, title, detect, tuple(support), keywords, feature_notes)
        )
    if notes:
        raise ConfigError(f"{source}: notes of unknown features: {', '.join(sorted(notes))}")
    return SupportTable(tuple(clients), tuple(features))


@cache
def shipped_table() -> SupportTable:
    text = resources.files("postroom.checks").joinpath("html_support.txt").read_text("utf-8")
    return parse_table(text)


@cache
def load_table(path: str) -> SupportTable:
    """--html-check-data: the table in PATH, or the shipped one when PATH is empty."""
    if not path:
        return shipped_table()
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--html-check-data: cannot read {path}: {exc}") from None
    return parse_table(text, path)
