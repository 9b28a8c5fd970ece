"""The writer process itself: `python -m postroom.storage.writer_child FD`.

Started by `ProcessBatchWriter` (writer_process.py, which describes the exchange) with its end
of a socket pair as FD. It opens the database named in the first frame, then writes each
batch it receives in one transaction and answers with the outcomes, until the socket closes.
When no batch comes for a while, it indexes the messages waiting for SQLite's full-text index
(storage/fulltext.py).
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import sys
from collections.abc import Sequence

from postroom.storage import fulltext
from postroom.storage.batch import BatchWriter
from postroom.storage.engine import resolve_target, writer_engine
from postroom.storage.write_lock import SqliteWriteLock
from postroom.storage.writer_process import frame, receive

log = logging.getLogger("postroom.storage.writer")
RETRY = 5  # seconds before indexing again after a failure (a batch still comes at once)


def _serve(sock: socket.socket) -> int:
    kind, url, complete = receive(sock)
    if kind != "open":
        return 2
    try:
        engine = writer_engine(url)
        with engine.connect():
            pass
    except Exception as exc:
        sock.sendall(frame(("error", f"{type(exc).__name__}: {exc}")))
        return 1
    # The server's own writers and this process queue on one lock (storage/write_lock.py).
    database = resolve_target(url).sqlite_path
    lock = SqliteWriteLock(database) if database is not None else None
    writer = BatchWriter(engine, lock, complete=complete, index_when_idle=True)
    sock.sendall(frame(("ready", None)))
    wait = fulltext.IDLE_DRAIN
    # poll(), not select(): the socket keeps the parent's descriptor number, over 1,024 when a
    # busy server restarts this process.
    batches = select.poll()
    batches.register(sock, select.POLLIN)
    try:
        while True:
            # The full-text index waits for a pause of IDLE_DRAIN (storage/fulltext.py), then
            # takes IDLE_STEP messages at a time while no batch comes.
            if writer.waiting and not batches.poll(wait * 1000):
                try:
                    writer.index_waiting(fulltext.IDLE_STEP)
                except Exception:
                    log.exception("indexing the waiting messages failed; retrying in %d s", RETRY)
                    wait = RETRY
                else:
                    wait = 0.0
                continue
            try:
                _kind, batch = receive(sock)
            except EOFError:
                return 0
            sock.sendall(frame(writer.write_messages(batch)))
            wait = fulltext.IDLE_DRAIN
    finally:
        engine.dispose()


def main(argv: Sequence[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s[writer]: %(message)s",
    )
    sock = socket.socket(fileno=int(argv[0]))
    try:
        return _serve(sock)
    except (OSError, EOFError):
        return 0  # the parent went away
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
