"""Alembic environment for Postroom's schema.

Postroom runs migrations itself when it opens the store (see `postroom.storage.migrate`):
the caller passes an open connection, inside a transaction, through
`Config.attributes["connection"]`. No alembic.ini and no logging configuration are involved.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from postroom.storage.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "Postroom migrations run from postroom.storage.migrate.upgrade(connection), "
        "not from the alembic command line"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)

with context.begin_transaction():
    context.run_migrations()
