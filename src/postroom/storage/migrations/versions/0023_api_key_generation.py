"""API keys move the platform's change counter too (`platform_generation`, migration 0007):
triggers on `api_keys` raise it in the same transaction as a key created, deleted or changed
(its project, name, scopes or digest), whoever writes it (the API, the CLI, another process,
plain SQL). The HTTP doors then keep the keys they have checked (api/auth.py) and trust one
only while the counter has not moved, so a key revoked is refused from the very next request.
Recording a key's last use (`last_used_us`) does not count as a change.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision: str | None = "0022"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_TABLE = "api_keys"
_COLUMNS = "id, project, name, scopes, digest"  # not last_used_us
_FUNCTION = "postroom_platform_changed"  # made by 0007
_BUMP = "UPDATE platform_generation SET value = value + 1 WHERE id = 1"
_EVENTS = ("INSERT", "UPDATE", "DELETE")


def _trigger(event: str) -> str:
    return f"trg_{_TABLE}_{event.lower()}_generation"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {_trigger('change')} "
            f"AFTER INSERT OR UPDATE OF {_COLUMNS} OR DELETE ON {_TABLE} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
        )
        return
    for event in _EVENTS:  # SQLite: one trigger per event, per row
        what = f"UPDATE OF {_COLUMNS}" if event == "UPDATE" else event
        op.execute(f"CREATE TRIGGER {_trigger(event)} AFTER {what} ON {_TABLE} BEGIN {_BUMP}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {_trigger('change')} ON {_TABLE}")
        return
    for event in _EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS {_trigger(event)}")
