"""One finding of the headers check: a level, the check and header it is about, a sentence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["pass", "warn", "fail", "info"]
LEVELS: tuple[Level, ...] = ("fail", "warn", "pass", "info")


@dataclass(frozen=True, slots=True)
class Finding:
    """`check` groups findings (dkim, spf, dmarc, list-unsubscribe, from, date, message-id,
    addresses, structure); `header` names the field it is about ("" for none); `text` says
    what was found and why it matters, for a person."""

    level: Level
    check: str
    header: str
    text: str

    def as_json(self) -> dict[str, str]:
        return {"Level": self.level, "Check": self.check, "Header": self.header, "Text": self.text}
