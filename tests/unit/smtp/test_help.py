from __future__ import annotations

import pytest

from .support import Client


def test_help_lists_the_commands() -> None:
    client = Client()
    replies = client.replies(b"HELP\r\n")
    assert len(replies) == 1
    lines = replies[0].split("\n")
    assert all(line.startswith("214-2.0.0 ") for line in lines[:-1])
    assert lines[-1].startswith("214 2.0.0 ")
    assert "STARTTLS" in replies[0] and "BDAT" in replies[0]


@pytest.mark.parametrize("topic", ["MAIL", "rcpt", "AUTH", "BDAT"])
def test_help_for_a_command(topic: str) -> None:
    client = Client()
    replies = client.replies(f"HELP {topic}\r\n".encode())
    assert client.codes(outputs=client.outputs) == ["214 2.0.0"]
    assert topic.upper() in replies[0]


def test_help_for_an_unknown_topic_is_504() -> None:
    assert Client().codes(b"HELP FROBNICATE\r\n") == ["504 5.5.4"]
