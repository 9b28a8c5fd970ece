"""Chaos, as Mailpit has it: errors injected into the capture door on purpose, so that a
team can see how its application copes with an SMTP server that says no.

Three stages (Sender at MAIL FROM, Recipient at RCPT TO, Authentication at AUTH), each with a
reply code (400 to 599) and a probability in percent. Postroom keeps the triggers per project
(the capture mail of each project) in memory; they start at 0 % and a restart resets them.
The randomness is injected (`rng`), so tests can seed it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from postroom.core.errors import InvalidInput, Refusal, RefusalKind

STAGES = ("Authentication", "Recipient", "Sender")
DEFAULT_CODE = 451


@dataclass(frozen=True, slots=True)
class Trigger:
    error_code: int = DEFAULT_CODE
    probability: int = 0

    def as_json(self) -> dict[str, int]:
        return {"ErrorCode": self.error_code, "Probability": self.probability}


Triggers = dict[str, Trigger]


def default_triggers() -> Triggers:
    return {stage: Trigger() for stage in STAGES}


def triggers_json(triggers: Triggers) -> dict[str, Any]:
    return {stage: triggers[stage].as_json() for stage in STAGES}


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be a whole number from {low} to {high}", field)
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be from {low} to {high}, got {value}", field)
    return value


def parse_triggers(body: dict[str, Any]) -> Triggers:
    """Mailpit's ChaosTriggers: each stage given is set; the stages left out go back to 0 %."""
    unknown = sorted(set(body) - set(STAGES))
    if unknown:
        raise InvalidInput(
            f"unknown Chaos stage {unknown[0]!r}: expected {', '.join(STAGES)}", unknown[0]
        )
    triggers = default_triggers()
    for stage, value in body.items():
        if not isinstance(value, dict):
            raise InvalidInput(f"{stage} must be an object with ErrorCode and Probability", stage)
        extra = sorted(set(value) - {"ErrorCode", "Probability"})
        if extra:
            raise InvalidInput(
                f"{stage}.{extra[0]} is not a Chaos trigger field", f"{stage}.{extra[0]}"
            )
        for name in ("ErrorCode", "Probability"):
            if name not in value:
                raise InvalidInput(f"{stage}.{name} is required", f"{stage}.{name}")
        triggers[stage] = Trigger(
            _whole(value["ErrorCode"], f"{stage}.ErrorCode", 400, 599),
            _whole(value["Probability"], f"{stage}.Probability", 0, 100),
        )
    return triggers


class Chaos:
    """The triggers of every project, and the dice."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self._projects: dict[str, Triggers] = {}

    def triggers(self, project: str) -> Triggers:
        return dict(self._projects.get(project) or default_triggers())

    def set(self, project: str, triggers: Triggers) -> None:
        self._projects[project] = dict(triggers)

    def strike(self, project: str, stage: str) -> Refusal | None:
        """The error to answer at this stage now, if its trigger fires."""
        trigger = self._projects.get(project, {}).get(stage)
        if trigger is None or trigger.probability <= 0:
            return None
        if trigger.probability < 100 and self.rng.randrange(100) >= trigger.probability:
            return None
        return Refusal(
            RefusalKind.INJECTED,
            f"Chaos: {stage} error injected on purpose ({trigger.probability}% of the time)",
            temporary=trigger.error_code < 500,
            code=trigger.error_code,
            field=stage,
        )
