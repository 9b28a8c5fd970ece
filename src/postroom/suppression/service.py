"""What the API and the command line do with the suppression list: check the input, add,
remove, list, and import and export CSV.

CSV files have a header row naming their columns: `address` (or `email`, `emailaddress`),
and optionally `reason`, `expires` (RFC 3339) and `detail`; a file whose first row holds an
address has no header and is read as `address[,reason]`. An import is all or nothing: the first
bad row is named (`line N: ...`) and nothing is written. Export writes `address, reason,
created, expires, detail`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput
from postroom.core.suppression import (
    MAX_PAGE,
    Suppression,
    SuppressionPage,
    SuppressionQuery,
    SuppressionReason,
    check_address,
    check_reason,
)
from postroom.storage.suppressions import SqlSuppressionStore

EXPORT_COLUMNS = ("address", "reason", "created", "expires", "detail")
_ADDRESS_COLUMNS = ("address", "email", "emailaddress", "email_address", "recipient")
MAX_DETAIL = 1000


def parse_time(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{field} must be an RFC 3339 time such as 2027-01-02T03:04:05Z", field
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{field} must carry a time zone (Z or an offset)", field)
    return parsed


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula ("=HYPERLINK(...)" in a note, or an
    address such as "=cmd@example.com"): such a value gets a leading "'", which import
    removes again."""
    return "'" + value if value.startswith(_FORMULA) else value


def _uncell(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA) else value


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat().replace("+00:00", "Z")


class SuppressionList:
    """The suppression list of one database. `scope` is a project id or ACCOUNT; the caller
    (API, command line) has checked that the scope exists and may be reached."""

    def __init__(self, store: SqlSuppressionStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def add(
        self,
        scope: str,
        address: object,
        reason: object = "manual",
        *,
        expires: datetime | None = None,
        detail: object = "",
        event_id: int | None = None,
    ) -> Suppression:
        if not isinstance(detail, str) or len(detail) > MAX_DETAIL:
            raise InvalidInput(
                f"detail must be a string of at most {MAX_DETAIL} characters", "detail"
            )
        now = self._clock.now()
        if expires is not None and expires <= now:
            raise InvalidInput("expires must be in the future", "expires")
        entry = Suppression(
            scope,
            check_address(address),
            check_reason(reason),
            now,
            expires,
            event_id,
            detail,
        )
        return self._store.add(entry)

    def remove(self, scope: str, address: str) -> None:
        self._store.remove(scope, address)

    def get(self, scope: str, address: str) -> Suppression:
        return self._store.get(scope, address)

    def page(self, scope: str, query: SuppressionQuery) -> SuppressionPage:
        return self._store.query(scope, query)

    def suppressed(self, project: str, addresses: list[str]) -> dict[str, Suppression]:
        return self._store.suppressed(project, addresses, self._clock.now())

    # -- CSV -------------------------------------------------------------------------------

    def import_csv(
        self, scope: str, lines: Iterable[str], default_reason: SuppressionReason = "manual"
    ) -> int:
        """Add every row of a CSV file (all or nothing); the number of addresses added."""
        entries = list(self.read_csv(scope, lines, default_reason))
        return self._store.add_many(entries)

    def read_csv(
        self, scope: str, lines: Iterable[str], default_reason: SuppressionReason = "manual"
    ) -> Iterator[Suppression]:
        now = self._clock.now()
        reader = csv.reader(lines)
        columns: dict[str, int] | None = None
        for row in reader:
            line = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue
            if columns is None:
                names = [cell.strip().lower().replace(" ", "") for cell in row]
                found = next((c for c in _ADDRESS_COLUMNS if c in names), None)
                if found is not None:
                    columns = {name: index for index, name in enumerate(names)}
                    columns["address"] = names.index(found)
                    continue
                if "@" not in row[0]:
                    raise InvalidInput(
                        "line 1: the header must name an address column (address or email)",
                        "csv",
                    )
                columns = {"address": 0, "reason": 1}

            def cell(name: str, row: list[str] = row, columns: dict[str, int] = columns) -> str:
                index = columns.get(name)
                return _uncell(row[index].strip()) if index is not None and index < len(row) else ""

            try:
                address = check_address(cell("address"))
                reason = check_reason(cell("reason").lower() or default_reason)
                expires = parse_time(cell("expires"), "expires") if cell("expires") else None
            except InvalidInput as exc:
                raise InvalidInput(f"line {line}: {exc}", "csv") from None
            detail = cell("detail")[:MAX_DETAIL]
            if expires is not None and expires <= now:
                continue  # already over: nothing to suppress
            yield Suppression(scope, address, reason, now, expires, None, detail)

    def export_csv(self, scope: str) -> Iterator[str]:
        """The CSV text of a scope's entries, a line at a time (header first)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")

        def take(values: Iterable[str]) -> str:
            writer.writerow(values)
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return text

        yield take(EXPORT_COLUMNS)
        for entry in self._store.export(scope):
            yield take(
                (
                    _cell(entry.address),
                    entry.reason,
                    _time(entry.created),
                    _time(entry.expires),
                    _cell(entry.detail),
                )
            )


__all__ = ["MAX_PAGE", "SuppressionList", "parse_time"]
