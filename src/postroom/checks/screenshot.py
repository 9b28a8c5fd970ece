"""A PNG of a message's HTML as a browser renders it: headless Chromium driven over its
DevTools pipe (`--remote-debugging-pipe`: JSON messages on file descriptors 3 and 4), so no
Python package and no listening port are needed, only the `chromium` binary.

The HTML is hostile and must not reach anything while it is drawn:
- every request the page makes goes through the DevTools Fetch domain and is failed, but for
  the one document this module serves itself (from a name under `.invalid`); images of the
  message's own parts come inline as `data:` URLs;
- that document carries a CSP: `sandbox` (opaque origin, no script, no meta refresh, no
  forms, no popups), `default-src 'none'`, images and fonts from `data:` only;
- script is also off in the page (Emulation.setScriptExecutionDisabled), and Chromium is
  started with a proxy that does not exist and a resolver that resolves nothing, so even a
  request that escaped the rest would go nowhere.
The work is bounded: one browser per screenshot, killed after `timeout` seconds whatever
happens, a page at most `max_height` CSS pixels tall (the rest is cut), a fixed width.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from postroom.core.errors import PostroomError

DOCUMENT_URL = "http://message.postroom.invalid/"
DOCUMENT_CSP = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "form-action 'none'; base-uri 'none'"
)
ARGS = (
    "--headless",
    "--disable-gpu",
    "--remote-debugging-pipe",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
VIEWPORT_HEIGHT = 200
CLOSED = "Chromium closed its DevTools pipe (it did not start, or it exited)"
MAX_MESSAGE = 64 * 1024 * 1024  # a DevTools message (the PNG, base64) larger than this: refused
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ScreenshotFailed(PostroomError):
    """Chromium could not make the picture (it did not start, crashed or took too long)."""


def find_chromium(option: str) -> str | None:
    """The browser to use: `option` when it names one ("off": none), else the first of NAMES
    on PATH."""
    if option.strip().lower() in ("off", "none", "no"):
        return None
    if option:
        return shutil.which(option)
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class Shot:
    png: bytes
    width: int
    height: int
    cut: bool  # the page was taller than max_height


class _Pipe:
    """DevTools over Chromium's pipe, blocking: commands out on one fd, answers and events
    back on the other. Events are handled as they come, while waiting for an answer."""

    def __init__(self, read_fd: int, write_fd: int, deadline: float) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.deadline = deadline
        self.buffer = b""
        self.next_id = 0
        self.session = ""
        self.served = False
        self.loaded = False
        self.body = ""

    def _send(self, method: str, params: dict[str, Any], session: str = "") -> int:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            try:
                written = os.write(self.write_fd, data)
            except BrokenPipeError:
                raise self._closed() from None
            data = data[written:]
        return self.next_id

    def _closed(self) -> ScreenshotFailed:
        """The pipe's end: the browser exited, or was killed at the deadline (then it is the
        deadline's failure, whichever of the kill and the wait's own timeout came first)."""
        if time.monotonic() >= self.deadline:
            return ScreenshotFailed("Chromium took too long")
        return ScreenshotFailed(CLOSED)

    def _read(self, until: float) -> dict[str, Any] | None:
        """The next message, or None when `until` (a monotonic time) passed first."""
        while b"\0" not in self.buffer:
            left = min(until, self.deadline) - time.monotonic()
            if left <= 0:
                if time.monotonic() >= self.deadline:
                    raise ScreenshotFailed("Chromium took too long")
                return None
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise self._closed()
            self.buffer += chunk
            if len(self.buffer) > MAX_MESSAGE:
                raise ScreenshotFailed("Chromium's answer is too big")
        raw, _, self.buffer = self.buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def _event(self, message: dict[str, Any]) -> None:
        if not self.session or message.get("sessionId") != self.session:
            return
        method = message.get("method")
        params = message.get("params", {})
        if method == "Fetch.requestPaused":
            request_id = params["requestId"]
            if not self.served and params["request"]["url"] == DOCUMENT_URL:
                self.served = True
                headers = [
                    {"name": "Content-Type", "value": "text/html; charset=utf-8"},
                    {"name": "Content-Security-Policy", "value": DOCUMENT_CSP},
                ]
                self._send(
                    "Fetch.fulfillRequest",
                    {
                        "requestId": request_id,
                        "responseCode": 200,
                        "responseHeaders": headers,
                        "body": self.body,
                    },
                    self.session,
                )
            else:
                # Anything else the message asks for: refused, never sent.
                self._send(
                    "Fetch.failRequest",
                    {"requestId": request_id, "errorReason": "BlockedByClient"},
                    self.session,
                )
        elif method == "Page.loadEventFired":
            self.loaded = True

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a command (in the page's session once attached) and wait for its answer."""
        sent = self._send(method, params or {}, self.session)
        while True:
            message = self._read(self.deadline)
            assert message is not None
            if message.get("id") == sent:
                if "error" in message:
                    error = message["error"].get("message")
                    raise ScreenshotFailed(f"Chromium: {method}: {error}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._event(message)

    def wait_load(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self.loaded:
            message = self._read(until)
            if message is None:
                return
            self._event(message)


def screenshot(
    chromium: str,
    html: str,
    *,
    width: int = 1024,
    max_height: int = 8000,
    timeout: float = 20.0,
    load_wait: float = 5.0,
) -> Shot:
    """Render `html` at `width` CSS pixels in a fresh headless Chromium and return a PNG of
    the whole page (up to `max_height`). Blocking: run it in a thread."""
    deadline = time.monotonic() + timeout
    profile_dir = tempfile.TemporaryDirectory(prefix="postroom-shot-", ignore_cleanup_errors=True)
    with profile_dir as profile:
        to_browser_r, to_browser_w = _high_pipe()
        from_browser_r, from_browser_w = _high_pipe()
        args = [*ARGS, f"--user-data-dir={profile}", f"--window-size={width},{VIEWPORT_HEIGHT}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses root otherwise
        # The pipe must be fds 3 (commands in) and 4 (answers out) in the browser:
        # posix_spawn's file actions put them there without a shell or a preexec hook.
        devnull = os.devnull
        try:
            pid = os.posix_spawn(
                chromium,
                [chromium, *args, "about:blank"],
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, to_browser_r, 3),
                    (os.POSIX_SPAWN_DUP2, from_browser_w, 4),
                ],
                setsid=True,
            )
        finally:
            os.close(to_browser_r)
            os.close(from_browser_w)
        # Whatever happens, the browser and every helper it started (its own process group)
        # are gone at the deadline: a read waiting on the pipe then ends.
        killer = threading.Timer(max(0.0, deadline - time.monotonic()), _kill, (pid,))
        killer.daemon = True
        killer.start()
        try:
            pipe = _Pipe(from_browser_r, to_browser_w, deadline)
            pipe.body = base64.b64encode(html.encode("utf-8")).decode("ascii")
            return _render(pipe, width, max_height, load_wait)
        except OSError as exc:
            raise ScreenshotFailed(f"Chromium's DevTools pipe: {exc}") from None
        finally:
            killer.cancel()
            _kill(pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            os.close(from_browser_r)
            os.close(to_browser_w)


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are above 4: the browser's fds 3 and 4 are made from them, and a
    pipe end that already was 3 or 4 would be closed by the redirections that follow."""
    read, write = os.pipe()
    try:
        return fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, 10), fcntl.fcntl(
            write, fcntl.F_DUPFD_CLOEXEC, 10
        )
    finally:
        os.close(read)
        os.close(write)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _render(pipe: _Pipe, width: int, max_height: int, load_wait: float) -> Shot:
    target = pipe.call("Target.createTarget", {"url": "about:blank"})
    attached = pipe.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
    pipe.session = attached["sessionId"]
    pipe.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
    pipe.call("Page.enable")
    pipe.call("Emulation.setScriptExecutionDisabled", {"value": True})
    pipe.call(
        "Emulation.setDeviceMetricsOverride",
        # Like the UI's preview frame at that width (not a phone's zoomed-out layout); a
        # short viewport, so a short message makes a short picture.
        {"width": width, "height": VIEWPORT_HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    navigated = pipe.call("Page.navigate", {"url": DOCUMENT_URL})
    if navigated.get("errorText"):
        raise ScreenshotFailed(f"Chromium could not load the message: {navigated['errorText']}")
    # Images are data: URLs, so the load event comes soon; a page that never fires it is
    # drawn as it is after load_wait.
    pipe.wait_load(load_wait)
    metrics = pipe.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
    full = max(1, int(size.get("height", VIEWPORT_HEIGHT)))
    height = min(full, max_height)
    shot = pipe.call(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    return Shot(base64.b64decode(shot["data"]), width, height, full > max_height)
