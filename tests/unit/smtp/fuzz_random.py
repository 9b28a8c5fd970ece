"""A fast, seeded generator of fuzz cases for the sans-IO SMTP session and the MIME parser.

The hypothesis strategies in fuzz_support.py and tests/unit/mime/test_mime_hypothesis.py are
good at shrinking but cost milliseconds per example, most of it in hypothesis itself; the long
run (bench/fuzz_long.py) needs a million session inputs. This module draws the same kinds of
inputs with `random.Random` (command sequences with pipelining, random splits down to every
octet, random message bytes, mutations of the messages in tests/fixtures carried over SMTP)
and checks the same properties with the same driver (fuzz_support.Driver):

- no exception, every reply well formed (three-digit code, one code per multi-line reply,
  `-` on all lines but the last, CRLF, enhanced status codes of the right class);
- the same replies, messages and end whether the input is fed whole, at random cuts or octet
  by octet;
- a DATA message is handed over exactly at the first <CRLF>.<CRLF>, unstuffed as the
  reference does it;
- a correct client's messages arrive byte for byte, DATA and BDAT mixed, and what is
  pipelined after a BDAT LAST chunk is processed intact;
- the MIME parser (summary, view, parts, tree) never raises on random or mutated messages.

Each case is drawn from `random.Random(case_seed(seed, index))`, so a case is reproduced from
its seed and index alone (`bench/fuzz_long.py --replay INDEX --seed SEED`).
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass

from postroom.smtp.protocol import SessionPolicy

from .fuzz_support import (
    BYTEWISE_LIMIT,
    HarnessError,
    check_framing,
    make_policy,
    run,
    same,
    split_invariance,
)

TRANSACTION = b"EHLO client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"

ADDRESSES = [
    "a@example.com",
    "b@example.org",
    "refuse@example.com",
    "defer@example.net",
    "postmaster",
    "Postmaster",
    "",
    '"quoted local"@example.com',
    "ü@exämple.de",
    "a@[127.0.0.1]",
    "a@[IPv6:::1]",
    "@relay.example:a@example.com",
    "a@b@c",
    "x" * 70 + "@example.com",
    "a@" + "d" * 300 + ".com",
]
PARAMS = [
    "",
    " SIZE=100",
    " SIZE=99999999",
    " SIZE=123456789012345678901",
    " BODY=8BITMIME",
    " BODY=BINARYMIME",
    " BODY=7BIT",
    " SMTPUTF8",
    " RET=HDRS ENVID=abc+2Bdef",
    " RET=FULL",
    " AUTH=<>",
    " AUTH=a+2Bb@example.com",
    " NOTIFY=SUCCESS,FAILURE",
    " NOTIFY=NEVER",
    " NOTIFY=NEVER,SUCCESS",
    " ORCPT=rfc822;a@example.com",
    " ORCPT=utf-8;a\\x{FC}@example.com",
    " FOO=bar",
    " SIZE=",
    " =x",
    " SIZE=1 SIZE=2",
]
WORDS = [
    "EHLO",
    "HELO",
    "MAIL",
    "RCPT",
    "DATA",
    "BDAT",
    "RSET",
    "NOOP",
    "QUIT",
    "VRFY",
    "EXPN",
    "HELP",
    "STARTTLS",
    "AUTH",
    "TURN",
    "GET",
    "ehlo",
    "",
    "X",
]
BODY_LINES = [
    b"Subject: fuzz",
    b"",
    b".",
    b"..",
    b". leading dot",
    b"REJECT me",
    b"DEFER me",
    b"MAIL FROM:<smuggled@example.com>",
    b"\x00nul",
    b"bare\rcr",
    b"bare\nlf",
    b"x" * 250,
    "ünïcode".encode(),
    b"\xff\xfe",
]
DATA_ENDS = [b"\r\n.\r\n", b"\r\n.\r\n", b".\r\n", b"\n.\n", b"\r\n.\n", b"\n.\r\n", b""]
# Octet sequences that matter to SMTP framing, inserted by the mutator.
SMTP_TOKENS = [
    b"\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"\n.\n",
    b"\r",
    b"\n",
    b".",
    b"..",
    b"\x00",
    b"\xff",
    b"DATA\r\n",
    b"BDAT 5\r\n",
    b"BDAT 0 LAST\r\n",
    b"BDAT 3 LAST\r\n",
    b"RSET\r\n",
    b"QUIT\r\n",
    b"STARTTLS\r\n",
    b"MAIL FROM:<x@example.com>\r\n",
    b"RCPT TO:<y@example.com>\r\n",
    b"AUTH PLAIN\r\n",
    b"EHLO x\r\n",
    b" BODY=BINARYMIME",
    b" SIZE=1",
    b"REJECT",
    b"DEFER",
]


def case_seed(seed: int, index: int) -> int:
    """The seed of case `index` of a run seeded with `seed`."""
    return (seed << 40) ^ index


def binary(rng: random.Random, max_size: int) -> bytes:
    return rng.randbytes(rng.randint(0, max_size))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def address(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(ADDRESSES)
    local = rng.choice(["a", "é", "x.y"]) * rng.randint(1, 300)
    domain = ".".join(["d" * rng.randint(1, 70)] * rng.randint(1, 8))
    return f"{local}@{domain}.com"


def param(rng: random.Random) -> str:
    if rng.random() < 0.85:
        return rng.choice(PARAMS)
    key = rng.choice(["X", "ENVID", "ORCPT", "NOTIFY", "SIZE", "AUTH", "É"]) * rng.randint(1, 3)
    value = rng.choice(["1", "a", "+2B", "rfc822;", "é", ""]) * rng.randint(0, 900)
    return f" {key * rng.randint(1, 200)}={value}"


def auth_exchange(rng: random.Random) -> bytes:
    mech = rng.choice(["PLAIN", "LOGIN", "plain", "CRAM-MD5", ""])
    user = rng.choice(["user", "", "ü", "a" * 100])
    password = rng.choice(["secret", "wrong", "unavailable", "throttle", "goodbye"])
    authz = rng.choice(["", user, "other"])
    plain = _b64(f"{authz}\0{user}\0{password}")
    style = rng.randint(0, 4)
    if style == 0:
        return f"AUTH {mech} {plain}\r\n".encode()
    if style == 1:
        return f"AUTH {mech}\r\n{plain}\r\n".encode()
    if style == 2:
        return f"AUTH {mech} {_b64(user)}\r\n{_b64(password)}\r\n".encode()
    if style == 3:
        return f"AUTH {mech}\r\n{_b64(user)}\r\n{_b64(password)}\r\n".encode()
    return f"AUTH {mech}\r\n{rng.choice(['*', '=', '!!!', 'AAAA'])}\r\n".encode()


def data_body(rng: random.Random) -> bytes:
    """A body as a client sends it after DATA: lines, dot-stuffed or not, some with bare
    CR/LF, with or without a terminator (which may itself be malformed)."""
    lines = [
        rng.choice(BODY_LINES) if rng.random() < 0.6 else binary(rng, 40)
        for _ in range(rng.randint(0, 12))
    ]
    if rng.random() < 0.5:
        lines = [b"." + line if line.startswith(b".") else line for line in lines]
    sep = rng.choice([b"\r\n", b"\r\n", b"\n", b"\r"])
    return sep.join(lines) + rng.choice(DATA_ENDS)


def bdat_chunks(rng: random.Random) -> bytes:
    """One to three BDAT chunks whose declared sizes may lie."""
    out = bytearray()
    for _ in range(rng.randint(1, 3)):
        payload = binary(rng, 60) if rng.random() < 0.5 else rng.choice(BODY_LINES)
        lie = rng.choice([0, 0, 0, 1, -1, 10**6, 10**19])
        size = max(0, len(payload) + lie) if lie != 10**19 else 10**20
        last = rng.choice(["", " LAST", " last", " LAST X"])
        out += f"BDAT {size}{last}\r\n".encode() + payload
    return bytes(out)


def command(rng: random.Random) -> bytes:
    kind = rng.randint(0, 11)
    if kind == 0:
        return f"EHLO {rng.choice(['client.test', '', 'a b', '[127.0.0.1]'])}\r\n".encode()
    if kind == 1:
        return f"HELO {rng.choice(['client.test', ''])}\r\n".encode()
    if kind == 2:
        sep = rng.choice(["FROM:", "FROM: ", "from:", "FROM:", "FROM"])
        return f"MAIL {sep}<{address(rng)}>{param(rng)}\r\n".encode()
    if kind == 3:
        sep = rng.choice(["TO:", "TO: ", "to:", "TO"])
        return f"RCPT {sep}<{address(rng)}>{param(rng)}\r\n".encode()
    if kind == 4:
        return b"DATA\r\n" + data_body(rng)
    if kind == 5:
        return bdat_chunks(rng)
    if kind == 6:
        return auth_exchange(rng)
    if kind == 7:
        arg = rng.choice(["", " ", " x", " MAIL", "\t", " é"])
        arg += rng.choice(["", "y", "é"]) * rng.choice([0, 0, 1, 5, rng.randint(0, 1100)])
        end = rng.choice(["\r\n", "\n", "\r\n", "\r", ""])
        return f"{rng.choice(WORDS)}{arg}{end}".encode()
    if kind == 8:
        return binary(rng, 80)
    if kind == 9:
        # lines around the limits: 512 for commands, +1024 for MAIL/RCPT
        verb = rng.choice([b"X", b"NOOP ", b"MAIL FROM:<a@b.c> X=", b"RCPT TO:<a@b.c> X="])
        size = rng.choice([508, 510, 511, 512, 513, 1534, 1535, 1536, 1537, 2000])
        return verb + b"y" * (size - len(verb) - 2) + rng.choice([b"\r\n", b"\n"])
    if kind == 10 and rng.random() < 0.2:  # 12288 for AUTH (long: drawn less often)
        size = rng.choice([12286, 12287, 12288, 12289])
        return b"AUTH PLAIN " + b"A" * (size - 13) + rng.choice([b"\r\n", b"\n", b""])
    return rng.choice([b"RSET\r\n", b"NOOP\r\n", b"STARTTLS\r\n", b"QUIT\r\n"])


TRAILERS = [b"NOOP\r\n", b"RSET\r\n", b"HELP\r\n", b"VRFY x\r\n", b"QUIT\r\n", b"EHLO c\r\n"]
PREFIXES = [b"", b"EHLO client.test\r\n", TRANSACTION]


def session_input(rng: random.Random, max_commands: int = 12) -> bytes:
    """A client's whole input: usually starting with EHLO and a transaction, then anything."""
    commands = [command(rng) for _ in range(rng.randint(0, max_commands))]
    return rng.choice(PREFIXES) + b"".join(commands)


def cuts(rng: random.Random, data: bytes) -> list[int]:
    if len(data) < 2:
        return []
    return [rng.randint(1, len(data) - 1) for _ in range(rng.randint(0, 12))]


def policy(rng: random.Random, *, starttls: bool) -> SessionPolicy:
    return make_policy(
        bare_line_endings=rng.choice(["accept", "reject"]),
        max_text_line=rng.choice([0, 200, 1000]),
        max_message_size=rng.choice([1, 64, 4096]),
        auth_required=rng.random() < 0.5,
        tls_required=starttls and rng.random() < 0.5,
        starttls_available=starttls,
    )


def mutate(rng: random.Random, data: bytes, tokens: list[bytes], rounds: int = 8) -> bytes:
    """`data` with one to `rounds` random edits: an octet changed, a token or random octets
    inserted, a span deleted or duplicated, the tail cut off."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, rounds)):
        choice = rng.random()
        position = rng.randint(0, len(buffer))
        if choice < 0.25 and buffer:
            buffer[min(position, len(buffer) - 1)] = rng.randrange(256)
        elif choice < 0.5:
            buffer[position:position] = rng.choice(tokens)
        elif choice < 0.6:
            buffer[position:position] = binary(rng, 16)
        elif choice < 0.75 and buffer:
            del buffer[position : position + rng.randint(1, 200)]
        elif choice < 0.92 and buffer:
            start = rng.randint(0, len(buffer) - 1)
            buffer[position:position] = buffer[start : start + rng.randint(1, 400)]
        else:
            del buffer[position:]
    return bytes(buffer)


def stuffed(message: bytes) -> bytes:
    """`message` as a correct client sends it after DATA (CRLF lines, dot-stuffed, ended)."""
    return (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"


def as_text(message: bytes) -> bytes:
    """`message` made sendable by DATA: no NUL, CRLF lines only, ending with CRLF."""
    text = message.replace(b"\0", b"").replace(b"\r", b"").replace(b"\n", b"\r\n")
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


def carried(rng: random.Random, messages: list[bytes]) -> tuple[bytes, list[bytes]]:
    """A correct client's session sending `messages`, each by DATA or by BDAT in random
    chunks (LAST alone or on the last data chunk), with QUIT at the end, and what the
    session must hand over for them (messages the fuzz pipeline refuses are left out)."""
    wire = bytearray(b"EHLO client.test\r\n")
    expected: list[bytes] = []
    for message in messages:
        binary_body = rng.random() < 0.5
        if not binary_body:
            message = as_text(message)
        if b"REJECT" in message or b"DEFER" in message:
            continue
        if binary_body:
            wire += b"MAIL FROM:<a@example.com> BODY=BINARYMIME\r\nRCPT TO:<b@example.org>\r\n"
            offsets = sorted({rng.randint(0, len(message)) for _ in range(rng.randint(0, 4))})
            start = 0
            for offset in offsets:
                wire += f"BDAT {offset - start}\r\n".encode() + message[start:offset]
                start = offset
            tail = message[start:]
            if tail and rng.random() < 0.3:
                wire += f"BDAT {len(tail)}\r\n".encode() + tail + b"BDAT 0 LAST\r\n"
            else:
                wire += f"BDAT {len(tail)} LAST\r\n".encode() + tail
            expected.append(message)
        else:
            wire += b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
            wire += stuffed(message)
            expected.append(message)
    wire += b"QUIT\r\n"
    return bytes(wire), expected


@dataclass
class Tally:
    """What a run has done so far."""

    cases: int = 0
    mime: int = 0


class Cases:
    """The case kinds, drawn with weights. Each takes a seeded rng and raises
    HarnessError/AssertionError (or whatever the code under test raises) on a failure.

    `fixtures` are whole messages (tests/fixtures, the bounce corpus) mutated by the MIME
    cases and carried over SMTP by the corpus cases."""

    def __init__(self, fixtures: list[bytes], *, mime: bool) -> None:
        if not fixtures:
            raise ValueError("the fuzzer needs at least one fixture message")
        self.fixtures = fixtures
        self.tally = Tally()
        kinds: list[tuple[Callable[[random.Random], None], int]] = [
            (self.split, 30),
            (self.starttls, 8),
            (self.framing, 12),
            (self.exact, 10),
            (self.bdat, 8),
            (self.held, 8),
            (self.corpus, 14),
        ]
        if mime:
            kinds.append((self.mime, 10))
        self.kinds = [kind for kind, _ in kinds]
        self.weights = [weight for _, weight in kinds]

    def pick(self, rng: random.Random) -> Callable[[random.Random], None]:
        return rng.choices(self.kinds, self.weights)[0]

    def run_case(self, seed: int, index: int) -> str:
        """Run case `index`; returns its kind's name (raises if the case fails)."""
        rng = random.Random(case_seed(seed, index))
        kind = self.pick(rng)
        self.tally.cases += 1
        kind(rng)
        return kind.__name__

    # SMTP --------------------------------------------------------------------------------

    def split(self, rng: random.Random) -> None:
        """Any input, fed whole, at random cuts and octet by octet: the same well-formed
        replies, messages and end (STARTTLS off: what follows it in a read is dropped)."""
        wire = session_input(rng)
        split_invariance(wire, cuts(rng, wire), policy(rng, starttls=False))

    def starttls(self, rng: random.Random) -> None:
        """STARTTLS offered (and maybe required), TLS maybe already on: never raises, every
        reply well formed, nothing after Close."""
        wire = session_input(rng)
        run(wire, cuts(rng, wire), policy(rng, starttls=True), tls=rng.random() < 0.5)

    def framing(self, rng: random.Random) -> None:
        """DATA bodies fed octet by octet end exactly at the first <CRLF>.<CRLF> with the
        reference unstuffing, and equal feeding them whole."""
        wire = b"EHLO client.test\r\n" + b"".join(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + data_body(rng)
            for _ in range(rng.randint(1, 3))
        )
        chosen = policy(rng, starttls=False)
        same(run(wire, [], chosen), check_framing(wire, chosen), "octet by octet")

    def exact(self, rng: random.Random) -> None:
        """A correct client's messages, random bytes or mutated fixtures, by DATA and by
        BDAT mixed and pipelined: handed over byte for byte, everything after a BDAT LAST
        chunk processed intact, QUIT answered; split anywhere (or octet by octet)."""
        messages: list[bytes] = []
        for _ in range(rng.randint(0, 4)):
            if rng.random() < 0.6:
                messages.append(binary(rng, 300))
            else:
                messages.append(mutate(rng, rng.choice(self.fixtures), SMTP_TOKENS, 3)[:3000])
        wire, expected = carried(rng, messages)
        chosen = make_policy(
            max_text_line=0, max_message_size=10_000, bare_line_endings="accept", max_errors=0
        )
        if len(wire) <= BYTEWISE_LIMIT and rng.random() < 0.3:
            t = run(wire, range(1, len(wire)), chosen)
        else:
            t = run(wire, cuts(rng, wire), chosen)
        got = [m.data for m in t.messages]
        if got != expected:
            raise HarnessError(f"messages differ from what was sent:\n{got!r}\n{expected!r}")
        if not (t.closed and t.close_reason == "quit"):
            raise HarnessError(f"the session did not end with QUIT: {t.close_reason!r}")
        queued = bytes(t.replies).count(b"\r\n250 2.0.0 Ok: queued as")
        if queued != len(expected):
            raise HarnessError(f"{queued} messages queued, {len(expected)} sent")

    def bdat(self, rng: random.Random) -> None:
        """BDAT chunks with lying sizes after a transaction, then anything: at most one
        message, and only when a LAST chunk was sent."""
        chunks = bdat_chunks(rng)
        wire = TRANSACTION + chunks
        for _ in range(rng.randint(0, 3)):  # pipelined behind: nothing that starts a message
            wire += rng.choice(TRAILERS) if rng.random() < 0.7 else binary(rng, 40)
        t = split_invariance(wire, cuts(rng, wire), make_policy(max_message_size=4096))
        if len(t.messages) > 1 or (t.messages and b" LAST\r\n" not in chunks.upper()):
            raise HarnessError(f"{len(t.messages)} BDAT messages from {wire!r}")

    def held(self, rng: random.Random) -> None:
        """Everything pipelined behind a message or AUTH is held and replayed: feeding it
        all at once equals feeding command by command."""
        commands = [command(rng) for _ in range(rng.randint(0, 6))]
        ends: list[int] = []
        total = len(TRANSACTION)
        for item in commands:
            total += len(item)
            ends.append(total)
        wire = TRANSACTION + b"".join(commands)
        split_invariance(wire, ends, make_policy(starttls_available=False))

    def corpus(self, rng: random.Random) -> None:
        """A real message carried by DATA or BDAT, then the whole wire mutated with SMTP
        framing tokens: split invariance and well-formed replies."""
        messages = [rng.choice(self.fixtures)[: rng.choice([200, 1000, 3000])]]
        if rng.random() < 0.3:
            messages.append(binary(rng, 100))
        wire, _ = carried(rng, messages)
        wire = mutate(rng, wire, SMTP_TOKENS)
        split_invariance(wire, cuts(rng, wire), policy(rng, starttls=False))

    # MIME --------------------------------------------------------------------------------

    def mime(self, rng: random.Random) -> None:
        """The MIME parser on random bytes, generated structures and mutated messages."""
        from tests.unit.mime.test_mime_fuzz import TOKENS
        from tests.unit.mime.test_mime_hypothesis import full_check

        self.tally.mime += 1
        choice = rng.random()
        if choice < 0.15:
            raw = binary(rng, 2000)
        elif choice < 0.4:
            raw = b"From: a@b.c\r\nMIME-Version: 1.0\r\n" + mime_entity(rng)
        else:
            raw = mutate(rng, rng.choice(self.fixtures), [*TOKENS, mime_header(rng)])
        full_check(raw)


CONTENT_TYPES = [
    "text/plain",
    "text/html",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/related",
    "multipart/digest",
    "message/rfc822",
    "message/global",
    "message/delivery-status",
    "message/feedback-report",
    "application/octet-stream",
    "image/png",
    "text/rfc822-headers",
    "multipart/",
    "/",
    "",
]
CHARSETS = [
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "koi8-r",
    "shift_jis",
    "utf-7",
    "bogus",
    "",
    "utf-16",
]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "bogus", ""]
HEADER_NAMES = [
    "Subject",
    "From",
    "To",
    "Cc",
    "Date",
    "Message-ID",
    "Content-Type",
    "Content-Disposition",
    "Content-Transfer-Encoding",
    "Content-ID",
    "List-Unsubscribe",
    "X-Tags",
    "Received",
]
HEADER_VALUES = [
    "=?utf-8?b?w6k=?=",
    "=?koi8-r?q?=F0=D2=C9?=",
    "=?bogus?x?abc?=",
    '"Name, with comma" <a@b.c>, undisclosed:;',
    "<https://x.test/u>, <mailto:u@x.test?subject=stop>",
    "attachment; filename*0*=utf-8''%C3%A9; filename*1=\"x.txt\"",
    "Tue, 31 Feb 2024 25:61:61 +9999",
    "",
]
TEXT_POOL = "aé€\u200b\r\n\t :;<>\"'=?,\udcff日\x00"


def mime_header(rng: random.Random) -> bytes:
    if rng.random() < 0.6:
        value = rng.choice(HEADER_VALUES)
    else:
        value = "".join(rng.choice(TEXT_POOL) for _ in range(rng.randint(0, 60)))
    line = f"{rng.choice(HEADER_NAMES)}: {value}\r\n"
    return line.encode("utf-8", "surrogateescape")


def mime_entity(rng: random.Random, depth: int = 0) -> bytes:
    ctype = rng.choice(CONTENT_TYPES)
    boundary = rng.choice(["b1", "b2", "", "=_x", "b1 b1", "a" * 80])
    headers = bytearray(b"".join(mime_header(rng) for _ in range(rng.randint(0, 3))))
    headers += (
        f'Content-Type: {ctype}; charset="{rng.choice(CHARSETS)}"; boundary="{boundary}"\r\n'
    ).encode()
    headers += f"Content-Transfer-Encoding: {rng.choice(ENCODINGS)}\r\n".encode()
    if rng.random() < 0.5:
        headers += b'Content-Disposition: attachment; filename="f.bin"\r\n'
    if ctype.startswith("multipart/") and depth < 4:
        body = b"preamble\r\n"
        for _ in range(rng.randint(0, 3)):
            body += f"--{boundary}\r\n".encode() + mime_entity(rng, depth + 1) + b"\r\n"
        if rng.random() < 0.5:
            body += f"--{boundary}--\r\n".encode()
        body += rng.choice([b"", b"epilogue\r\n", b"--"])
    elif ctype.startswith("message/") and depth < 4:
        body = mime_entity(rng, depth + 1)
    elif rng.random() < 0.5:
        body = rng.choice([b"", b"aGVsbG8=", b"=C3=A9=\r\n", b"<p>hi</p>", b"begin 644 x\r\n"])
    else:
        body = binary(rng, 120)
    return bytes(headers) + b"\r\n" + body
