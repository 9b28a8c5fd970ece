"""Durable message storage: SQLite (embedded default) or PostgreSQL, via SQLAlchemy Core."""

from postroom.storage.engine import StorageSettings, open_store, resolve_target
from postroom.storage.store import SqlMessageStore, WriterStats

__all__ = ["SqlMessageStore", "StorageSettings", "WriterStats", "open_store", "resolve_target"]
