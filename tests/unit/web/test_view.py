"""The pieces of /view/{ID}.html: cid: rewriting, the embed head and the content policy."""

from __future__ import annotations

from postroom.api.view import embed, html_policy, part_url, rewrite_cid
from postroom.core.types import AttachmentInfo

ID = "01JABCDEFGHJKMNPQRSTVWXYZ0"


def part(part_id: str, cid: str) -> AttachmentInfo:
    return AttachmentInfo(part_id, "logo.png", "image/png", cid, 10, True)


def test_cid_references_point_at_the_message_parts() -> None:
    html = (
        "<img src=\"cid:logo@x\"><img src='CID:Photo%40x'>"
        '<div style="background:url(cid:bg@x)"></div><img src="cid:unknown@x">'
    )
    out = rewrite_cid(html, ID, [part("1.2", "logo@x"), part("2", "<photo@x>"), part("3", "bg@x")])
    assert f'src="/api/v1/message/{ID}/part/1.2"' in out
    assert f"src='/api/v1/message/{ID}/part/2'" in out
    assert f"url(/api/v1/message/{ID}/part/3)" in out
    assert 'src="cid:unknown@x"' in out  # left alone


def test_no_parts_means_no_change() -> None:
    assert rewrite_cid('<img src="cid:a">', ID, []) == '<img src="cid:a">'


def test_part_ids_are_escaped_in_urls() -> None:
    assert part_url(ID, "1/../2") == f"/api/v1/message/{ID}/part/1%2F..%2F2"


def test_embed_keeps_the_doctype_first() -> None:
    out = embed("<!DOCTYPE html><html><body>x</body></html>")
    assert out.startswith('<!DOCTYPE html><base target="_blank">')
    assert embed("<p>x</p>").startswith('<base target="_blank">')


def test_policy_blocks_script_and_remote_content_by_default() -> None:
    policy = html_policy("http://127.0.0.1:8025", ID, remote=False)
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'none'"
    assert "script-src" not in directives  # falls back to default-src 'none'
    assert directives["img-src"] == f"data: http://127.0.0.1:8025/api/v1/message/{ID}/part/"
    assert "http:" not in directives["style-src"] and "https:" not in directives["style-src"]
    assert directives["form-action"] == "'none'"
    assert directives["sandbox"] == "allow-popups allow-popups-to-escape-sandbox"
    assert "allow-scripts" not in policy and "allow-same-origin" not in policy


def test_policy_with_remote_content_allows_remote_images_styles_fonts_only() -> None:
    directives = dict(
        d.split(" ", 1) for d in html_policy("http://h:1", ID, remote=True).split("; ")
    )
    for name in ("img-src", "style-src", "font-src"):
        assert directives[name].endswith("https: http:"), name
    assert directives["default-src"] == "'none'"
    assert "allow-scripts" not in directives["sandbox"]


def test_policy_without_a_usable_origin_falls_back_to_self() -> None:
    assert "img-src data: 'self'" in html_policy(None, ID, remote=False)
