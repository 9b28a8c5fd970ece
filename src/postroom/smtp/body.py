"""Message data judged piece by piece (sans-IO): what the session checks before it hands a
message on, and DATA's dot-unstuffing, both incremental so that a big message never has to be
held whole.

`BodyCheck` takes the octets of a message in order (dot-unstuffed for DATA) in pieces of any
size and returns them as they will be delivered (bare CR/LF normalised to CRLF when the policy
accepts them); it counts what the verdict needs: sizes before and after normalisation, NUL,
bare line endings, the longest line. The verdict does not depend on how the message was cut
into pieces: a CR at the end of a piece is held back until the next one (it may begin a CRLF),
so no piece handed on splits a CRLF, and normalising piece by piece equals normalising the
whole. `whole()` judges a message that arrived in one piece (the common, small case) with the
same code.

`Unstuffer` removes DATA's dot-stuffing (RFC 5321 §4.5.2) from a stream: it holds back a
trailing CR or CRLF that may begin a `CRLF.` sequence cut by the end of the piece.
"""

from __future__ import annotations


def normalise_line_endings(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


class BodyCheck:
    """Incremental checks of one message's octets (see the module docstring).

    `binary`: BODY=BINARYMIME, only the size counts. `line_limit`: the longest text line
    allowed including CRLF (0 = no limit)."""

    __slots__ = (
        "_cap",
        "_carry",
        "_line",
        "_tail",
        "bare",
        "binary",
        "nul",
        "reject_bare",
        "size_in",
        "size_out",
        "too_long",
    )

    def __init__(self, *, binary: bool, reject_bare: bool, line_limit: int) -> None:
        self.binary = binary
        self.reject_bare = reject_bare
        self._cap = line_limit - 2 if line_limit else -1  # longest line without CRLF
        self.size_in = 0  # octets received (before normalisation)
        self.size_out = 0  # octets handed on
        self.nul = False
        self.bare = False
        self.too_long = False
        self._carry = b""  # a CR held back
        self._line = 0  # length of the line in progress
        self._tail = b""  # the last two octets handed on

    def feed(self, data: bytes) -> bytes:
        """The octets to hand on for `data`, which continues the message."""
        self.size_in += len(data)
        if self.binary:
            self.size_out += len(data)
            return data
        if self._carry:
            data = self._carry + data
            self._carry = b""
        if data.endswith(b"\r"):
            self._carry = b"\r"
            data = data[:-1]
        return self._check(data)

    def finish(self, *, chunked: bool) -> bytes:
        """The last octets to hand on: a CR held back, and for BDAT a final CRLF when the
        message does not end with one (text messages only)."""
        if self.binary:
            return b""
        out = b""
        if self._carry:
            out = self._check(self._carry)
            self._carry = b""
        if chunked and self.size_out and self._tail != b"\r\n":
            out += self._check(b"\r\n")
        self._end_line()
        return out

    def whole(self, message: bytes, *, chunked: bool) -> bytes:
        """Judge a message that is all there: the octets to hand on."""
        self.size_in = len(message)
        if self.binary:
            self.size_out = len(message)
            return message
        out = self._check(message)
        if chunked and out and not out.endswith(b"\r\n"):
            out += self._check(b"\r\n")
        self._end_line()
        return out

    def _check(self, data: bytes) -> bytes:
        if not data:
            return data
        if b"\0" in data:
            self.nul = True
        crlf = data.count(b"\r\n")
        if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
            self.bare = True
            if not self.reject_bare:
                data = normalise_line_endings(data)
        cap = self._cap
        if cap >= 0 and not self.too_long:
            first = data.find(b"\r\n")
            if first < 0:
                self._line += len(data)
            else:
                last = data.rfind(b"\r\n")
                if self._line + first > cap or (
                    last - first - 2 > cap
                    and max(map(len, data[first + 2 : last].split(b"\r\n"))) > cap
                ):
                    self.too_long = True
                self._line = len(data) - last - 2
        self.size_out += len(data)
        self._tail = data[-2:] if len(data) >= 2 else self._tail[-1:] + data
        return data

    def _end_line(self) -> None:
        if self._cap >= 0 and self._line > self._cap:
            self.too_long = True


class Unstuffer:
    """DATA's dot-unstuffing over a stream. Feed the stream as the session holds it: a CRLF
    (the data counts as starting after one), then the data as received, up to and including
    the CRLF that begins the terminating `CRLF.CRLF`. That first CRLF is not handed on."""

    __slots__ = ("_carry", "_skip")

    def __init__(self) -> None:
        self._carry = b""
        self._skip = 2

    def feed(self, data: bytes, *, final: bool = False) -> bytes:
        data = self._carry + data
        self._carry = b""
        if not final:
            keep = 2 if data.endswith(b"\r\n") else 1 if data.endswith(b"\r") else 0
            if keep:
                self._carry = data[-keep:]
                data = data[:-keep]
        if b"\r\n." in data:
            data = data.replace(b"\r\n.", b"\r\n")
        if self._skip:
            skipped = min(self._skip, len(data))
            data = data[skipped:]
            self._skip -= skipped
        return data
