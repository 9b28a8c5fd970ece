"""Email templates in Handlebars syntax, as Amazon SES renders them — safely.

Supported: `{{name}}` and dotted paths (`{{user.first}}`, `{{../title}}` in blocks, `{{this}}`,
`{{@index}}`, `{{@key}}`, `{{@first}}`, `{{@last}}`), `{{{raw}}}` and `{{& raw}}` (not
escaped), `{{! comment }}` and `{{!-- comment --}}`, and the blocks `{{#if x}}`, `{{#unless x}}`,
`{{#each list}}` (lists and objects), `{{#with obj}}`, each with an optional `{{else}}`.
A leading `~` (`{{~x}}`) trims whitespace like Handlebars.

Safety: the template is parsed into a tree and interpreted; it cannot call code, read files or
reach Python attributes (paths look up dictionary keys and list indexes only). A render is
bounded in steps (`max_steps`, each variable and loop iteration counts), output size
(`max_output`) and nesting depth, so a hostile template or data cannot run forever or exhaust
memory. HTML escaping applies when `escape_html` is set (the HTML part), not for subject and
text.

A variable that is absent from the data is an error naming it (`MissingVariable`), except as
the condition of `if`/`unless` (absent is false) and of `each`/`with` (absent is empty).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from postroom.core.errors import InvalidInput

MAX_TEMPLATE = 512 * 1024
MAX_DEPTH = 32
_TAG = re.compile(
    r"\{\{(?P<ltrim>~?)(?:\{(?P<raw>.*?)\}|(?P<body>.*?))(?P<rtrim>~?)\}\}", re.DOTALL
)
_COMMENT_LONG = re.compile(r"\{\{~?!--.*?--~?\}\}", re.DOTALL)
_PATH = re.compile(r"^(?:\.\./)*(?:@?[A-Za-z_][\w-]*|this|\.)(?:\.[A-Za-z_0-9][\w-]*)*$")
_BLOCKS = frozenset({"if", "unless", "each", "with"})


class TemplateError(InvalidInput):
    """The template is malformed or its rendering exceeded a limit; the message says where."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "template")


class MissingVariable(TemplateError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Attribute '{name}' is not present in the rendering data")
        self.name = name


@dataclass(slots=True)
class _Text:
    text: str


@dataclass(slots=True)
class _Var:
    path: str
    raw: bool


@dataclass(slots=True)
class _Block:
    kind: str
    path: str
    body: list[Any] = field(default_factory=list)
    inverse: list[Any] = field(default_factory=list)


def _check_path(path: str, where: int) -> str:
    if not _PATH.match(path):
        raise TemplateError(f"{{{{{path}}}}} at offset {where} is not a variable name or path")
    return path


def parse(template: str) -> list[Any]:
    """The template's tree. Raises TemplateError naming the problem and its offset."""
    if len(template) > MAX_TEMPLATE:
        raise TemplateError(f"template is larger than {MAX_TEMPLATE} characters")
    template = _COMMENT_LONG.sub("", template)
    root: list[Any] = []
    stack: list[tuple[_Block, bool]] = []  # (block, in its else branch)
    target = root
    position = 0
    trim_next = False
    for match in _TAG.finditer(template):
        text = template[position : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group("ltrim"):
            text = text.rstrip()
        if text:
            target.append(_Text(text))
        position = match.end()
        trim_next = bool(match.group("rtrim"))
        raw = match.group("raw")
        body = (raw if raw is not None else match.group("body")).strip()
        if "{" in body or "}" in body:
            raise TemplateError(f"unbalanced braces at offset {match.start()}")
        if body.startswith("!"):
            continue
        if raw is not None:
            target.append(_Var(_check_path(body, match.start()), raw=True))
        elif body.startswith("&"):
            target.append(_Var(_check_path(body[1:].strip(), match.start()), raw=True))
        elif body.startswith("#"):
            kind, _, argument = body[1:].partition(" ")
            if kind not in _BLOCKS:
                raise TemplateError(f"unknown block helper #{kind} at offset {match.start()}")
            if len(stack) >= MAX_DEPTH:
                raise TemplateError(f"blocks nested deeper than {MAX_DEPTH}")
            block = _Block(kind, _check_path(argument.strip(), match.start()))
            target.append(block)
            stack.append((block, False))
            target = block.body
        elif body == "else" or body == "^":
            if not stack or stack[-1][1]:
                raise TemplateError(f"{{{{else}}}} outside a block at offset {match.start()}")
            block, _ = stack[-1]
            stack[-1] = (block, True)
            target = block.inverse
        elif body.startswith("/"):
            kind = body[1:].strip()
            if not stack or stack[-1][0].kind != kind:
                expected = f"{{{{/{stack[-1][0].kind}}}}}" if stack else "no closing tag"
                raise TemplateError(
                    f"{{{{/{kind}}}}} at offset {match.start()} does not close the open block "
                    f"(expected {expected})"
                )
            stack.pop()
            if stack:
                block, in_else = stack[-1]
                target = block.inverse if in_else else block.body
            else:
                target = root
        else:
            if " " in body:
                raise TemplateError(f"helpers are not supported: {{{{{body}}}}}")
            target.append(_Var(_check_path(body, match.start()), raw=False))
    rest = template[position:]
    if trim_next:
        rest = rest.lstrip()
    if rest:
        target.append(_Text(rest))
    if stack:
        raise TemplateError(f"{{{{#{stack[-1][0].kind}}}}} is not closed")
    return root


_MISSING = object()


@dataclass(slots=True)
class _Frame:
    value: Any
    data: Mapping[str, Any]


class _Renderer:
    def __init__(self, escape_html: bool, max_steps: int, max_output: int) -> None:
        self.escape_html = escape_html
        self.steps = max_steps
        self.room = max_output
        self.out: list[str] = []

    def _tick(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateError("template rendering took too many steps")

    def _emit(self, text: str) -> None:
        self.room -= len(text)
        if self.room < 0:
            raise TemplateError("rendered template is too large")
        self.out.append(text)

    def lookup(self, path: str, frames: list[_Frame]) -> Any:
        depth = 0
        while path.startswith("../"):
            path, depth = path[3:], depth + 1
        if depth >= len(frames):
            return _MISSING
        frame = frames[-1 - depth]
        if path in ("this", "."):
            return frame.value
        if path.startswith("@"):
            return frame.data.get(path[1:], _MISSING)
        value = frame.value
        for key in path.removeprefix("this.").split("."):
            if isinstance(value, Mapping) and key in value:
                value = value[key]
            elif isinstance(value, Sequence) and not isinstance(value, str) and key.isdigit():
                index = int(key)
                value = value[index] if index < len(value) else _MISSING
            else:
                return _MISSING
            if value is _MISSING:
                return _MISSING
        return value

    def render(self, nodes: list[Any], frames: list[_Frame]) -> None:
        for node in nodes:
            self._tick()
            if isinstance(node, _Text):
                self._emit(node.text)
            elif isinstance(node, _Var):
                value = self.lookup(node.path, frames)
                if value is _MISSING:
                    raise MissingVariable(node.path)
                text = _display(value)
                self._emit(html.escape(text) if self.escape_html and not node.raw else text)
            else:
                self.block(node, frames)

    def block(self, node: _Block, frames: list[_Frame]) -> None:
        value = self.lookup(node.path, frames)
        present = value is not _MISSING and _truthy(value)
        if node.kind == "if":
            self.render(node.body if present else node.inverse, frames)
        elif node.kind == "unless":
            self.render(node.inverse if present else node.body, frames)
        elif node.kind == "with":
            if present:
                self.render(node.body, [*frames, _Frame(value, {})])
            else:
                self.render(node.inverse, frames)
        elif isinstance(value, Mapping) and value:
            items = list(value.items())
            for index, (key, item) in enumerate(items):
                self._tick()
                data = {"index": index, "key": key, "first": index == 0}
                data["last"] = index == len(items) - 1
                self.render(node.body, [*frames, _Frame(item, data)])
        elif isinstance(value, Sequence) and not isinstance(value, str) and value:
            for index, item in enumerate(value):
                self._tick()
                data = {"index": index, "first": index == 0, "last": index == len(value) - 1}
                self.render(node.body, [*frames, _Frame(item, data)])
        else:
            self.render(node.inverse, frames)


def _truthy(value: Any) -> bool:
    """Handlebars' truth: false, null, "", 0 and empty lists are false; objects are true."""
    if isinstance(value, Mapping):
        return True
    if isinstance(value, Sequence) and not isinstance(value, str):
        return len(value) > 0
    return bool(value)


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (Mapping, list)):
        return "[object Object]" if isinstance(value, Mapping) else ",".join(map(_display, value))
    return str(value)


def render(
    template: str | list[Any],
    data: Mapping[str, Any],
    *,
    escape_html: bool = False,
    max_steps: int = 200_000,
    max_output: int = 10 * 1024 * 1024,
) -> str:
    """Render a template (text or a tree from `parse`) with `data`. Raises TemplateError."""
    nodes = parse(template) if isinstance(template, str) else template
    renderer = _Renderer(escape_html, max_steps, max_output)
    renderer.render(nodes, [_Frame(data, {})])
    return "".join(renderer.out)
