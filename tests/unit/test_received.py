from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from postroom.core.types import Envelope, SessionInfo, TlsInfo
from postroom.pipeline.received import received_header


def test_received_header_records_tls_and_auth() -> None:
    session = SessionInfo(
        door="capture",
        session_id="s1",
        peer_host="127.0.0.1",
        peer_port=5000,
        server_name="mx.test",
        helo="client.example",
        esmtp=True,
        tls=TlsInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
        auth_user="bob(evil)\r\nX: y",
    )
    header = received_header(
        session, Envelope("a@b.c", ("d@e.f",)), "ID1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ).decode()
    assert header.startswith("Received: from client.example ([127.0.0.1])\r\n\tby mx.test")
    assert "with ESMTPSA id ID1" in header
    assert "using TLSv1.3" in header
    assert "authenticated as bobevilX: y" in header
    assert "for <d@e.f>; Fri, 02 Jan 2026 03:04:05 +0000\r\n" in header
    assert header.count("\r\n") == header.count("\n")
    assert all(line.startswith("\t") for line in header.split("\r\n")[1:-1])


def test_received_header_dates_follow_the_clock_and_its_zone() -> None:
    """The date text is remembered per second and zone: each call still gets its own."""
    session = SessionInfo("capture", "s1", "127.0.0.1", 5000, "mx.test", "c", True, None, None)
    envelope = Envelope("a@b.c", ("d@e.f",))
    plus_two = timezone(timedelta(hours=2))
    for when, text in [
        (datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC), "Fri, 02 Jan 2026 03:04:05 +0000"),
        (datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC), "Fri, 02 Jan 2026 03:04:06 +0000"),
        (datetime(2026, 1, 2, 3, 4, 6, tzinfo=plus_two), "Fri, 02 Jan 2026 03:04:06 +0200"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "Fri, 02 Jan 2026 03:04:05 +0000"),
    ]:
        header = received_header(session, envelope, "ID1", when).decode()
        assert header.endswith(f"; {text}\r\n")
