"""Handlebars templates as SES renders them, and the limits that keep them safe."""

from __future__ import annotations

import pytest

from postroom.pipeline.templates import MissingVariable, TemplateError, parse, render

DATA = {
    "name": "Ada <admin>",
    "user": {"first": "Ada", "plan": None, "tags": ["a", "b"]},
    "items": [{"sku": "X1", "qty": 2}, {"sku": "Y2", "qty": 0}],
    "empty": [],
    "zero": 0,
    "prefs": {"lang": "en", "tz": "UTC"},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {{name}}!", "Hello Ada <admin>!"),
        ("{{user.first}} {{user.tags.1}}", "Ada b"),
        ("{{#if user.plan}}paid{{else}}free{{/if}}", "free"),
        ("{{#if missing}}yes{{else}}no{{/if}}", "no"),
        ("{{#unless zero}}zero is false{{/unless}}", "zero is false"),
        (
            "{{#each items}}{{@index}}:{{sku}}x{{qty}}{{#unless @last}}, {{/unless}}{{/each}}",
            "0:X1x2, 1:Y2x0",
        ),
        ("{{#each empty}}item{{else}}none{{/each}}", "none"),
        ("{{#each prefs}}{{@key}}={{this}};{{/each}}", "lang=en;tz=UTC;"),
        ("{{#with user}}{{first}} of {{../name}}{{/with}}", "Ada of Ada <admin>"),
        ("{{#each user.tags}}[{{this}}]{{/each}}", "[a][b]"),
        ("a {{! a comment }}b{{!-- {{long}} --}}c", "a bc"),
        ("x  {{~name~}}  y", "xAda <admin>y"),
        ("{{user.plan}}|{{zero}}", "|0"),
    ],
)
def test_text_rendering(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


def test_html_escaping_except_triple_braces() -> None:
    assert render("<p>{{name}}</p>", DATA, escape_html=True) == "<p>Ada &lt;admin&gt;</p>"
    assert render("{{{name}}}|{{& name}}", DATA, escape_html=True) == "Ada <admin>|Ada <admin>"


def test_missing_variable_is_named() -> None:
    with pytest.raises(MissingVariable) as caught:
        render("Hi {{user.last}}", DATA)
    assert caught.value.name == "user.last" and "user.last" in str(caught.value)
    assert caught.value.field == "template"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{#if a}}x", "is not closed"),
        ("{{#if a}}x{{/each}}", "does not close"),
        ("{{else}}", "outside a block"),
        ("{{#loop a}}{{/loop}}", "unknown block helper"),
        ("{{lookup a b}}", "helpers are not supported"),
        ("{{__class__.__init__}}x{{a;b}}", "not a variable name"),
        ("{{{a}}", "unbalanced"),
    ],
)
def test_malformed_templates(template: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        parse(template)


def test_no_python_attributes_are_reachable() -> None:
    with pytest.raises(MissingVariable):
        render("{{name.upper}}", DATA)
    with pytest.raises(MissingVariable):
        render("{{__class__}}", DATA)


def test_limits_stop_hostile_templates_and_data() -> None:
    nested = {"l": [[list(range(100))] * 100] * 100}  # 1,000,000 leaves
    with pytest.raises(TemplateError, match="too many steps"):
        render("{{#each l}}{{#each this}}{{#each this}}{{this}}{{/each}}{{/each}}{{/each}}", nested)
    with pytest.raises(TemplateError, match="too large"):
        render(
            "{{#each l}}{{{../big}}}{{/each}}",
            {"l": list(range(50)), "big": "x" * 1_000_000},
            max_output=10_000_000,
        )
    with pytest.raises(TemplateError, match="nested deeper"):
        parse("{{#if a}}" * 40 + "{{/if}}" * 40)
