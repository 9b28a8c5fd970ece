"""Guards on the committed front-end files: no HTML parsing of data, nothing inline that the
Content-Security-Policy would block, nothing fetched from the network, no dangling imports."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from postroom.web.routes import STATIC_DIR, TEMPLATE_DIR

SCRIPTS = sorted(STATIC_DIR.glob("*.js"))
TEXT_FILES = [*SCRIPTS, *STATIC_DIR.glob("*.css"), *TEMPLATE_DIR.glob("*.html")]


def test_there_are_modules_and_an_entry_point() -> None:
    assert (STATIC_DIR / "app.js") in SCRIPTS
    assert len(SCRIPTS) >= 3


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_never_parse_html_or_evaluate_strings(path: Path) -> None:
    source = path.read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "srcdoc",
    ):
        assert sink not in source, f"{path.name} uses {sink}"
    assert not re.search(r"setAttribute\(\s*['\"]style['\"]", source), "inline style attribute"
    assert not re.search(r"setTimeout\(\s*['\"`]", source), "string passed to setTimeout"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_relative_imports_resolve(path: Path) -> None:
    for target in re.findall(r"""from\s+['"](\./[^'"]+)['"]""", path.read_text()):
        assert (path.parent / target).is_file(), f"{path.name} imports missing {target}"
    assert not re.search(r"""from\s+['"](?!\./)""", path.read_text()), "bare or absolute import"


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: p.name)
def test_nothing_comes_from_the_network(path: Path) -> None:
    urls = re.findall(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s'"`)]*""", path.read_text())
    allowed = {"http://www.w3.org/2000/svg"}
    assert [u for u in urls if u not in allowed and not u.startswith("//")] == [], path.name


class _ShellAudit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        values = dict(attrs)
        # A JSON data block (the inbox's first page) is data the browser never runs.
        if tag == "script" and "src" not in names and values.get("type") != "application/json":
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("inline <style>")
        if "style" in names:
            self.problems.append(f"style attribute on <{tag}>")
        self.problems.extend(
            f"{name} handler on <{tag}>" for name in names if name.startswith("on")
        )
        for name in ("href", "src", "action"):
            if (values.get(name) or "").lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")
        if values.get("id"):
            self.ids.append(values["id"] or "")


def test_shell_has_nothing_inline_for_the_csp_to_block() -> None:
    audit = _ShellAudit()
    audit.feed((TEMPLATE_DIR / "index.html").read_text())
    assert audit.problems == []
    assert len(audit.ids) == len(set(audit.ids)), "duplicate ids"


def test_every_element_the_entry_module_looks_up_exists_in_the_shell() -> None:
    audit = _ShellAudit()
    audit.feed((TEMPLATE_DIR / "index.html").read_text())
    wanted = set(re.findall(r"""\$\(\s*'([\w-]+)'\s*\)""", (STATIC_DIR / "app.js").read_text()))
    assert wanted, "app.js looks elements up with $('id')"
    assert wanted - set(audit.ids) == set()


def test_every_icon_used_is_in_the_sprite() -> None:
    shell = (TEMPLATE_DIR / "index.html").read_text()
    defined = set(re.findall(r'<symbol id="i-([\w-]+)"', shell))
    used = set()
    for path in SCRIPTS:
        used |= set(re.findall(r"""icon(?:Button)?\(\s*'([\w-]+)'""", path.read_text()))
    used |= set(re.findall(r'href="#i-([\w-]+)"', shell))
    assert used and used <= defined, used - defined
