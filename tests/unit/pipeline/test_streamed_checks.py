"""The streaming forms of two checks of big submitted messages agree with the whole-message
forms, however the body is cut: the relaxed DKIM body hash and the body line length check."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from postroom.dns.dkim import RelaxedBodyHash, canonicalize_body_relaxed
from postroom.pipeline.headers import HeaderError, check_body_line_chunks, check_body_lines

PIECES = [b" ", b"\t", b"a", b"b", b"\r\n", b"\r\n", b"  ", b"\r"]


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted({p for p in points if 0 < p < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(st.lists(st.sampled_from(PIECES), max_size=40), st.lists(st.integers(0, 200)))
def test_relaxed_body_hash_in_pieces(parts: list[bytes], points: list[int]) -> None:
    body = b"".join(parts).replace(b"\r\r", b"\r")
    body = body.replace(b"\r\n", b"\0").replace(b"\r", b"").replace(b"\0", b"\r\n")
    hasher = RelaxedBodyHash()
    for piece in cut(body, points):
        hasher.update(piece)
    assert hasher.digest() == hashlib.sha256(canonicalize_body_relaxed(body)).digest()


def test_a_long_line_without_crlf_is_hashed_as_it_comes() -> None:
    body = b"x  " * 100_000 + b"end  \t"
    hasher = RelaxedBodyHash()
    for piece in cut(body, list(range(0, len(body), 7000))):
        hasher.update(piece)
    assert hasher.digest() == hashlib.sha256(canonicalize_body_relaxed(body)).digest()


def verdict(check: object, *args: object) -> bool:
    assert callable(check)
    try:
        check(*args)
    except HeaderError:
        return False
    return True


@given(
    st.lists(st.integers(0, 1100), min_size=1, max_size=6),
    st.lists(st.integers(0, 7000)),
)
@example([999], [])
@example([998, 998], [999])
def test_body_line_check_in_pieces(lengths: list[int], points: list[int]) -> None:
    body = b"\r\n".join(b"y" * n for n in lengths)
    # fix_up checks what follows the header fields: the empty line, then the body
    whole = verdict(check_body_lines, b"\r\n" + body)
    assert verdict(check_body_line_chunks, cut(body, points)) == whole


@pytest.mark.parametrize("cut_at", [997, 998, 999, 1000, 1001])
def test_a_crlf_cut_by_a_chunk_end_is_a_line_end(cut_at: int) -> None:
    body = b"y" * 998 + b"\r\n" + b"z" * 998 + b"\r\n"
    assert verdict(check_body_line_chunks, [body[:cut_at], body[cut_at:]])
    longer = b"y" * 999 + b"\r\n"
    assert not verdict(check_body_line_chunks, [longer[:cut_at], longer[cut_at:]])
