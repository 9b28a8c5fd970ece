"""Micro-benchmark: SMTP sessions per second through the sans-IO state machine alone.

Each session is the typical transcript of a client that does not pipeline: greeting, EHLO,
MAIL, RCPT, DATA, a 2 KB message in one block, the pipeline's answer, QUIT. Run:

    .venv/bin/python bench/smtp_protocol.py [seconds]
"""

from __future__ import annotations

import sys
import time

from postroom.smtp.protocol import DeliverMessage, SessionPolicy, SmtpSession

POLICY = SessionPolicy(hostname="bench.example")
LINE = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
MESSAGE = (
    b"From: Sender <sender@example.com>\r\n"
    b"To: Recipient <recipient@example.org>\r\n"
    b"Subject: benchmark\r\n"
    b"Message-ID: <bench@example.com>\r\n"
    b"\r\n" + LINE * (2048 // len(LINE)) + b".\r\n"
)
COMMANDS = (
    b"EHLO client.example.com\r\n",
    b"MAIL FROM:<sender@example.com> SIZE=2048\r\n",
    b"RCPT TO:<recipient@example.org>\r\n",
    b"DATA\r\n",
)


def one_session() -> None:
    session = SmtpSession(POLICY, peer="192.0.2.1")
    session.greeting()
    for command in COMMANDS:
        session.feed(command)
    outputs = session.feed(MESSAGE)
    delivery = outputs[-1]
    assert isinstance(delivery, DeliverMessage), outputs
    session.message_result("01JBENCHMARK0000000000000")
    session.feed(b"QUIT\r\n")
    assert session.closed


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    one_session()
    count = 0
    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    deadline = wall_start + seconds
    while True:
        for _ in range(500):
            one_session()
        count += 500
        if time.perf_counter() >= deadline:
            break
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    print(
        f"smtp_protocol: {count / cpu:,.0f} sessions/s of CPU time "
        f"({cpu / count * 1e6:.1f} µs per EHLO/MAIL/RCPT/DATA({len(MESSAGE)} B)/QUIT session); "
        f"{count / wall:,.0f} sessions/s wall-clock"
    )


if __name__ == "__main__":
    main()
