"""The writer process: group-commit batches written by a child process with its own GIL.

In one process the writer thread competes with the event loop for the GIL: under load each
batch waits for it several times (around each statement and the commit), so a batch takes
milliseconds longer than its fsync and every SMTP client waits that long for its 250.
With `ProcessBatchWriter` the event loop sends each batch to a child process over a socket
pair without blocking, and resolves the batch when the child's answer arrives; the child
(writer_child.py) runs a `BatchWriter` on its own connection: it parses the messages that
came without their summary (big ones, see pipeline/acceptance.py) and commits. No thread
takes part, so nothing waits for the GIL.

Frames in both directions: 8-byte big-endian length, then a pickle. The parent sends
`("open", url, completer)` once, then `("write", [batch.Prepared or NewMessage, ...])` per
batch (rows of complete messages, or messages to complete); the child answers
`("ready", None)` or `("error", message)` to the first, and a list of outcomes
(batch.Outcome) to each batch, in order. The child exits when its socket closes (the parent
stopped or died); it ignores SIGINT, so a Ctrl-C in a terminal stops the parent, which
finishes the batches in flight and then closes the socket. A child that dies fails the
batches in flight with StorageError (the SMTP clients hear 451 and retry) and the next batch
starts a new child.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import pickle
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from postroom.core.errors import StorageError
from postroom.core.ports import Completer
from postroom.core.types import NewMessage
from postroom.storage.batch import Outcomes, prepare

log = logging.getLogger("postroom.storage.writer")

_HEADER = struct.Struct("!Q")
START_TIMEOUT = 60.0  # seconds for a child to import, connect and say ready
STOP_TIMEOUT = 10.0
_READ_SIZE = 256 * 1024


def frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("the peer closed the connection")
        got += n
    return bytes(buffer)


def receive(sock: socket.socket) -> Any:
    """One frame from a blocking socket."""
    (size,) = _HEADER.unpack(_receive_exactly(sock, _HEADER.size))
    return pickle.loads(_receive_exactly(sock, size))


class _Child:
    """One running writer process and the parent's end of its socket."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop watching `sock`
        self.waiting: collections.deque[asyncio.Future[Outcomes]] = collections.deque()
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.dead = False


class ProcessBatchWriter:
    """Parent side: batches of new messages committed by a child process.

    `url` is the database URL with its password (it travels over the socket, never on the
    command line). `complete` (a module-level function: it travels by reference) completes
    messages that come without their summary, in the child. `start` (blocking) starts the
    child; `write` is called on the event loop.
    """

    def __init__(self, url: str, complete: Completer | None = None) -> None:
        self._url = url
        self._complete = complete
        self._child: _Child | None = None
        self._starting: asyncio.Lock | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.process.pid

    def start(self) -> None:
        """Start the child now (blocking); raise StorageError if it cannot start."""
        if self._child is None or self._child.dead:
            self._child = self._spawn()

    async def write(
        self, messages: Sequence[NewMessage], loop: asyncio.AbstractEventLoop
    ) -> Outcomes:
        """Commit `messages` in one transaction of the child; one outcome per message.
        `loop` is the running loop (the caller knows it; looking it up costs a getpid())."""
        if self._closed:
            raise StorageError("the message store writer process was stopped")
        child = self._child
        if child is not None and child.loop not in (None, loop) and child.waiting:
            # Answers owed to another (stopped) event loop would be taken for ours.
            self._fail(child, RuntimeError("used from another event loop"))
        if child is None or child.dead:
            child = await self._restart()
        if child.loop is not loop:
            self._watch(child, loop)
        # Rows of complete messages are built here: cheaper than pickling the message.
        data = frame(("write", [m if m.summary is None else prepare(m) for m in messages]))
        future: asyncio.Future[Outcomes] = loop.create_future()
        child.waiting.append(future)
        self._send(child, data)
        return await future

    async def close(self) -> None:
        """Stop the child once the batches in flight are answered. Idempotent."""
        self._closed = True
        child = self._child
        self._child = None
        if child is None:
            return
        if child.waiting and child.loop is asyncio.get_running_loop():
            await asyncio.gather(*child.waiting, return_exceptions=True)
        self._unwatch(child)
        child.sock.close()  # the child sees end-of-file and exits
        await asyncio.to_thread(_reap, child.process)

    # ------------------------------------------------------------------ child lifecycle

    async def _restart(self) -> _Child:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            child = self._child
            if child is not None and not child.dead:
                return child
            if child is not None:
                self._unwatch(child)
                child.sock.close()
                await asyncio.to_thread(_reap, child.process)
            self._child = await asyncio.to_thread(self._spawn)
            return self._child

    def _spawn(self) -> _Child:
        parent, child_end = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "postroom.storage.writer_child", str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            parent.close()
            raise StorageError(f"cannot start the message store writer process: {exc}") from exc
        finally:
            child_end.close()
        try:
            parent.settimeout(START_TIMEOUT)
            parent.sendall(frame(("open", self._url, self._complete)))
            kind, value = receive(parent)
        except (OSError, EOFError, pickle.PickleError) as exc:
            parent.close()
            process.kill()
            _reap(process)
            raise StorageError(f"the message store writer process did not start: {exc}") from exc
        if kind != "ready":
            parent.close()
            _reap(process)
            raise StorageError(
                f"the message store writer process cannot open the database: {value}"
            )
        parent.setblocking(False)
        log.debug("message store writer process %d ready", process.pid)
        return _Child(process, parent)

    # ------------------------------------------------------------------ socket I/O (event loop)

    def _watch(self, child: _Child, loop: asyncio.AbstractEventLoop) -> None:
        self._unwatch(child)
        child.loop = loop
        loop.add_reader(child.sock.fileno(), self._on_readable, child)

    @staticmethod
    def _unwatch(child: _Child) -> None:
        loop, child.loop = child.loop, None
        if loop is None or loop.is_closed() or child.sock.fileno() < 0:
            return
        loop.remove_reader(child.sock.fileno())
        loop.remove_writer(child.sock.fileno())

    def _send(self, child: _Child, data: bytes) -> None:
        if child.outbox:
            child.outbox += data
            return
        try:
            sent = child.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._fail(child, exc)
            return
        if sent < len(data):
            child.outbox += data[sent:]
            assert child.loop is not None
            child.loop.add_writer(child.sock.fileno(), self._on_writable, child)

    def _on_writable(self, child: _Child) -> None:
        try:
            sent = child.sock.send(child.outbox)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(child, exc)
            return
        del child.outbox[:sent]
        if not child.outbox and child.loop is not None:
            child.loop.remove_writer(child.sock.fileno())

    def _on_readable(self, child: _Child) -> None:
        try:
            data = child.sock.recv(_READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(child, exc)
            return
        if not data:
            self._fail(child, EOFError("the writer process exited"))
            return
        inbox = child.inbox
        inbox += data
        while len(inbox) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(inbox)
            end = _HEADER.size + size
            if len(inbox) < end:
                break
            try:
                outcomes = pickle.loads(inbox[_HEADER.size : end])
            except pickle.PickleError as exc:
                self._fail(child, exc)
                return
            del inbox[:end]
            if child.waiting:
                future = child.waiting.popleft()
                if not future.done():
                    future.set_result(outcomes)

    def _fail(self, child: _Child, exc: BaseException) -> None:
        """The child died or its socket broke: fail what it holds; the next write restarts."""
        if child.dead:
            return
        child.dead = True
        log.error("the message store writer process %d failed: %s", child.process.pid, exc)
        self._unwatch(child)
        child.process.kill()  # reaped by the restart or by close
        error = StorageError(f"the message store writer process failed: {exc}")
        while child.waiting:
            future = child.waiting.popleft()
            if not future.done() and not future.get_loop().is_closed():
                future.set_exception(error)


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("message store writer process %d did not stop; killing it", process.pid)
        process.kill()
        process.wait()
