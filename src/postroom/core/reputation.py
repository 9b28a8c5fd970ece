"""The reputation guard's vocabulary (pure): the counts rates are made of, the thresholds,
and the judgement of a project's level (`ok`, `warning`, `paused`) from its counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from postroom.core.errors import ConfigError

LEVELS = ("ok", "warning", "paused")


@dataclass(frozen=True, slots=True)
class Counts:
    """Within a window: recipients sent (`send` events), hard bounces, complaints."""

    sends: int = 0
    bounces: int = 0
    complaints: int = 0


def parse_rates(values: tuple[str, ...], option: str) -> tuple[float, float]:
    """(warn, pause) as fractions from "5%,10%" (or "0.05,0.1"); ConfigError naming the option."""
    if len(values) != 2:
        raise ConfigError(f"{option}: expected WARN,PAUSE such as 5%,10%")
    out: list[float] = []
    for value in values:
        text = value.strip()
        try:
            number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ConfigError(f"{option}: {value!r} is not a rate such as 5% or 0.05") from None
        if not 0 < number <= 1:
            raise ConfigError(f"{option}: {value!r} must be above 0 and at most 100%")
        out.append(number)
    if out[0] > out[1]:
        raise ConfigError(f"{option}: the warning rate must not be above the pause rate")
    return out[0], out[1]


@dataclass(frozen=True, slots=True)
class Thresholds:
    warn_bounce: float = 0.05
    pause_bounce: float = 0.10
    warn_complaint: float = 0.001
    pause_complaint: float = 0.005
    min_volume: int = 200
    window: float = 7 * 86400.0  # seconds

    def view(self) -> dict[str, Any]:
        return {
            "bounce_rate": {"warn": self.warn_bounce, "pause": self.pause_bounce},
            "complaint_rate": {"warn": self.warn_complaint, "pause": self.pause_complaint},
            "min_volume": self.min_volume,
            "window_seconds": self.window,
        }


def rates(counts: Counts) -> dict[str, Any]:
    sends = counts.sends
    return {
        "sends": sends,
        "bounces": counts.bounces,
        "complaints": counts.complaints,
        "bounce_rate": round(counts.bounces / sends, 6) if sends else 0.0,
        "complaint_rate": round(counts.complaints / sends, 6) if sends else 0.0,
    }


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}".rstrip("0").rstrip(".") + "%"


def judge(counts: Counts, limits: Thresholds) -> tuple[str, str]:
    """(level, why) for these counts: `ok` below the volume or the warning rates."""
    if counts.sends < limits.min_volume or counts.sends == 0:
        return "ok", ""
    bounce = counts.bounces / counts.sends
    complaint = counts.complaints / counts.sends
    days = f"{limits.window / 86400:g} days"
    for level, b_limit, c_limit in (
        ("paused", limits.pause_bounce, limits.pause_complaint),
        ("warning", limits.warn_bounce, limits.warn_complaint),
    ):
        if bounce >= b_limit:
            return level, (
                f"bounce rate {_pct(bounce)} over {days} "
                f"({counts.bounces} of {counts.sends}; {level} at {_pct(b_limit)})"
            )
        if complaint >= c_limit:
            return level, (
                f"complaint rate {_pct(complaint)} over {days} "
                f"({counts.complaints} of {counts.sends}; {level} at {_pct(c_limit)})"
            )
    return "ok", ""
