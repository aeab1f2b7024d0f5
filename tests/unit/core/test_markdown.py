"""Rendering context stacks to Markdown and parsing them back, from both dialects."""

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxfy.core.errors import ContextStackParseError
from ctxfy.core.markdown import parse_context_stack, render_context_stack
from ctxfy.core.stack import (
    ContextStack,
    Field,
    Layer,
    LayerKind,
    Section,
)
from ctxfy.core.stack_schema import (
    SCHEMA,
    blank_context_stack,
)

FIXTURES = Path(__file__).parents[2] / "fixtures"
TITLE = "ctxfy MCP Server Production Preparation and Observability"


def read_fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture
def clean_text() -> str:
    return read_fixture("context-stack-ctxfy-production.md")


@pytest.fixture
def mojibake_text() -> str:
    return read_fixture("context-stack-ctxfy-production.mojibake.txt")


@pytest.fixture
def seed(clean_text: str) -> ContextStack:
    return parse_context_stack(clean_text)


def section_of(stack: ContextStack, kind: LayerKind, heading: str) -> Section:
    layer = stack.layer(kind)
    assert layer is not None
    section = layer.section(heading)
    assert section is not None
    return section


# --- valid stacks, built from characters the grammar cares about ---------------------------

TRICKY = "aZ09 \t\n\r*_#-+:`{}~>|\\.🎯üÔ∏\u2028\x1c\xa0\ufeff"
SAMPLES = [
    "Metadata",
    "System Context Layer",
    "## Task Context Layer",
    "CONTEXT STACK: x",
    "Role Definition",
    "Behavioral Constraints",
    "Success Criteria",
    "**Tone:** calm",
    "**Tone**: calm",
    "- bullet",
    "* bullet",
    "# heading",
    "Tone: calm",
    "*italic*",
    "```",
    "User: hi",
]
raw = st.one_of(st.text(TRICKY, max_size=16), st.text(max_size=8), st.sampled_from(SAMPLES))


def accepted_by(make: Callable[[str], object]) -> Callable[[str], bool]:
    def accepts(value: str) -> bool:
        try:
            make(value)
        except ValueError:
            return False
        return True

    return accepts


lines = raw.map(str.strip)
keys = lines.filter(accepted_by(Field))
values = lines.filter(accepted_by(lambda v: Field("k", v)))
items = lines.filter(accepted_by(lambda i: Field("k", items=(i,))))
headings = lines.filter(accepted_by(Section))
texts = (
    st.lists(st.one_of(lines, st.just("")), max_size=5)
    .map("\n".join)
    .filter(accepted_by(lambda t: Section("h", t)))
)
subtitles = lines.filter(accepted_by(lambda s: Layer(LayerKind.TASK, s)))
fields = st.builds(Field, keys, values, st.lists(items, max_size=3).map(tuple))
sections = st.builds(
    Section,
    headings,
    texts,
    st.lists(items, max_size=3).map(tuple),
    st.lists(fields, max_size=3).map(tuple),
)
layers = st.builds(
    Layer, st.sampled_from(LayerKind), subtitles, st.lists(sections, max_size=3).map(tuple)
)
stacks = st.builds(
    ContextStack,
    lines.filter(accepted_by(ContextStack)),
    st.lists(fields, max_size=3).map(tuple),
    st.lists(layers, max_size=5, unique_by=lambda layer: layer.kind).map(tuple),
)


@settings(max_examples=300)
@given(stacks)
def test_parse_gives_back_every_rendered_valid_stack(stack: ContextStack) -> None:
    assert parse_context_stack(render_context_stack(stack)) == stack


FRAGMENTS = st.one_of(
    st.sampled_from(
        [
            "",
            "# CONTEXT STACK: t",
            "CONTEXT STACK:",
            "## Metadata",
            "Metadata",
            "## 🎯 System Context Layer",
            "Task Context Layer",
            "### Success Criteria",
            "Success Criteria",
            "Domain Terminology",
            "Examples of Expected Interactions",
            "*Subtitle*",
            "**Tone:** calm",
            "**:** x",
            "- **Functional:** y",
            "- ****:** z",
            "- **a**:",
            "Functional:",
            "- item",
            "-",
            "#",
            "```markdown",
            "```",
            "\ufeff",
        ]
    ),
    st.text(TRICKY, max_size=12),
)


@settings(max_examples=300)
@given(st.one_of(st.text(), st.lists(FRAGMENTS, max_size=25).map("\n".join)))
def test_parse_raises_only_its_own_error_on_any_text(text: str) -> None:
    try:
        stack = parse_context_stack(text)
    except ContextStackParseError:
        return
    assert parse_context_stack(render_context_stack(stack)) == stack


# --- the seed documents --------------------------------------------------------------------


def test_seed_has_its_title_metadata_and_all_five_layers(seed: ContextStack) -> None:
    assert seed.title == TITLE
    assert [f.key for f in seed.metadata] == [
        "Creation Date",
        "Author",
        "Domain",
        "Task Type",
        "Context Category",
    ]
    assert seed.metadata[1] == Field("Author", "Qwen Code")
    assert [layer.kind for layer in seed.layers] == list(LayerKind)


def test_seed_layers_have_their_subtitles_and_known_sections(seed: ContextStack) -> None:
    for kind, spec in SCHEMA.items():
        layer = seed.layer(kind)
        assert layer is not None
        assert layer.subtitle == spec.subtitle
        expected = [s.heading for s in spec.sections if not s.optional]
        assert [s.heading for s in layer.sections] == expected


def test_seed_sections_hold_their_fields_items_and_text(seed: ContextStack) -> None:
    criteria = section_of(seed, LayerKind.TASK, "Success Criteria")
    functional, non_functional = criteria.fields
    assert (functional.key, len(functional.items)) == ("Functional", 6)
    assert (non_functional.key, len(non_functional.items)) == ("Non-Functional", 5)
    assert non_functional.items[3].startswith("Zero critical security vulnerabilities")
    examples = section_of(seed, LayerKind.INTERACTION, "Examples of Expected Interactions")
    assert len(examples.items) == 2
    assert examples.items[0] == 'User: "I need to implement authentication for the MCP server"'
    assert examples.fields == ()
    terminology = section_of(seed, LayerKind.DOMAIN, "Domain Terminology")
    assert len(terminology.fields) == 13
    assert terminology.field("@MCP.prompt") is not None
    assert terminology.field("ctx.sample()") is not None
    role = section_of(seed, LayerKind.SYSTEM, "Role Definition")
    assert role.text.startswith("You are a senior Python/AI integration specialist")
    assert role.fields == ()
    tone = section_of(seed, LayerKind.SYSTEM, "Behavioral Constraints").field("tone")
    assert tone == Field("Tone", "Technical and collaborative")


def test_mojibake_copy_parses_like_the_clean_seed(clean_text: str, mojibake_text: str) -> None:
    # The copy was decoded as Mac Roman; outside headings that garbled only one arrow.
    garbled_arrow = "→".encode().decode("mac_roman")
    expected = parse_context_stack(clean_text.replace("→", garbled_arrow))
    assert parse_context_stack(mojibake_text) == expected


def test_seed_survives_render_then_parse(seed: ContextStack) -> None:
    markdown = render_context_stack(seed)
    assert parse_context_stack(markdown) == seed
    assert markdown.startswith(f"# CONTEXT STACK: {TITLE}\n\n## Metadata\n")
    assert "\n*AI Role & Boundaries*\n" in markdown
    assert "\n### Role Definition\n" in markdown
    assert "\n**Tone:** Technical and collaborative\n\n**Detail Level:**" in markdown
    assert "\n**Functional:**\n- OpenAPI 3.0 documentation" in markdown


def test_transport_noise_is_ignored(clean_text: str, seed: ContextStack) -> None:
    noisy = "\ufeffSure! Here it is:\r\n```markdown\r\n" + clean_text.replace("\n", "\r\n\r\n")
    assert parse_context_stack(noisy + "\r\n```\r\n") == seed


def test_fenced_rendered_markdown_parses(seed: ContextStack) -> None:
    assert parse_context_stack(f"```markdown\n{render_context_stack(seed)}```") == seed


def test_blank_template_survives_render_then_parse() -> None:
    blank = blank_context_stack()
    assert parse_context_stack(render_context_stack(blank)) == blank


# --- tolerance and its limits ----------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "hello\nworld", "## Metadata\n**Author:** me", "# Notes"])
def test_text_without_title_or_layer_is_rejected(text: str) -> None:
    with pytest.raises(ContextStackParseError, match="not a context stack"):
        parse_context_stack(text)


def test_a_title_alone_is_an_empty_stack() -> None:
    assert parse_context_stack("# CONTEXT STACK: Just a title") == ContextStack("Just a title")


def test_a_layer_without_title_gets_an_empty_title() -> None:
    stack = parse_context_stack("## Task Context Layer\n### Objective\nShip it.")
    assert stack == ContextStack(
        "", layers=(Layer(LayerKind.TASK, sections=(Section("Objective", "Ship it."),)),)
    )


LLM_STYLE = """\
# 🏗️ CONTEXT STACK: Demo
## Metadata
- **Author:** Bot
Domain: Testing
## System Context Layer
**AI Role & Boundaries**
### 🎯 Behavioral Constraints
- **Tone:** calm
**Detail Level**: high
Tone: stays text in a Markdown section
### Examples of Expected Interactions
- **User:** hi
### Open Questions
- **Functional:** who knows
## System Context Layer
### Extra
**Security:** tight
"""


def test_llm_style_markdown_is_read_generously() -> None:
    stack = parse_context_stack(LLM_STYLE)
    assert stack.title == "Demo"
    assert stack.metadata == (Field("Author", "Bot"), Field("Domain", "Testing"))
    (system,) = stack.layers
    assert system.subtitle == "AI Role & Boundaries"
    constraints, examples, questions, extra = system.sections
    assert constraints == Section(
        "🎯 Behavioral Constraints",
        text="Tone: stays text in a Markdown section",
        fields=(Field("Tone", "calm"), Field("Detail Level", "high")),
    )
    assert examples.items == ("User: hi",)
    assert questions == Section("Open Questions", items=("Functional: who knows",))
    assert extra.fields == (Field("Security", "tight"),)


def test_bullets_attach_to_the_open_field_until_text_closes_it() -> None:
    text = "## Task Context Layer\n### Notes\n**Risks:**\n- one\n\n- two\nFree text.\n- three"
    (task,) = parse_context_stack(text).layers
    assert task.sections[0] == Section(
        "Notes", text="Free text.", items=("three",), fields=(Field("Risks", items=("one", "two")),)
    )


def test_content_outside_sections_is_dropped() -> None:
    text = "Preamble\n# CONTEXT STACK: T\nStray\n## Domain Context Layer\n- not a subtitle\nLate"
    assert parse_context_stack(text) == ContextStack("T", layers=(Layer(LayerKind.DOMAIN),))


def test_empty_bullets_and_a_second_title_are_ignored_and_layers_merge() -> None:
    text = (
        "# CONTEXT STACK: One\n## Task Context Layer\n### Notes\n-\n- kept\n"
        "# CONTEXT STACK: Two\n## Task Context Layer\n### More"
    )
    assert parse_context_stack(text) == ContextStack(
        "One",
        layers=(
            Layer(LayerKind.TASK, sections=(Section("Notes", items=("kept",)), Section("More"))),
        ),
    )


@pytest.mark.parametrize(
    "text",
    [
        "a" + "*" * 100_000 + "b",
        "## System Context Layer\nx" + " *" * 50_000 + "y",
        "CONTEXT STACK: t\nTask Context Layer\nConstraints\nk" + " " * 100_000 + ":",
    ],
)
@pytest.mark.timeout(30)
def test_long_runs_of_marks_do_not_hang_the_parser(text: str) -> None:
    # A quadratic regex took minutes on these (a denial of service through one argument);
    # the timeout is a hang guard, not a performance assertion: linear code takes
    # milliseconds. Speed itself is measured in bench/.
    with contextlib.suppress(ContextStackParseError):
        stack = parse_context_stack(text)
        assert isinstance(stack.title, str)
