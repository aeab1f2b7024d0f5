"""Context-stack value objects: invariants, lookups, the schema, the template, dict round trip."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxfy.core.stack import (
    ContextStack,
    Field,
    Layer,
    LayerKind,
    Section,
)
from ctxfy.core.stack_schema import (
    METADATA_FIELDS,
    SCHEMA,
    SectionKind,
    blank_context_stack,
    placeholder,
    section_spec,
)
from ctxfy.core.stack_syntax import (
    heading_key,
    structural_role,
)

# Plain strings are enough here: the tricky ones are exercised by the Markdown round trip.
words = st.from_regex(r"[A-Za-z][A-Za-z0-9 &.()@{}-]{0,12}", fullmatch=True).map(str.strip)
fields = st.builds(
    Field,
    key=words,
    value=st.one_of(st.just(""), words),
    items=st.lists(words, max_size=3).map(tuple),
)
sections = st.builds(
    Section,
    heading=words.filter(lambda h: structural_role(h) is None),
    text=st.lists(words, max_size=3).map("\n".join),
    items=st.lists(words, max_size=3).map(tuple),
    fields=st.lists(fields, max_size=3).map(tuple),
)
layers = st.builds(
    Layer,
    kind=st.sampled_from(LayerKind),
    subtitle=st.one_of(st.just(""), words),
    sections=st.lists(sections, max_size=3).map(tuple),
)
stacks = st.builds(
    ContextStack,
    title=st.one_of(st.just(""), words),
    metadata=st.lists(fields, max_size=3).map(tuple),
    layers=st.lists(layers, max_size=5, unique_by=lambda layer: layer.kind).map(tuple),
)


def test_layer_kinds_have_lower_case_values_and_heading_words() -> None:
    assert [kind.value for kind in LayerKind] == [
        "system",
        "domain",
        "task",
        "interaction",
        "response",
    ]
    assert LayerKind.INTERACTION.heading == "Interaction Context Layer"


@pytest.mark.parametrize(
    ("key", "value", "items"),
    [
        ("", "", ()),
        ("a:b", "", ()),
        (" key", "", ()),
        ("key", "two\nlines", ()),
        ("key", "value ", ()),
        ("key", "", ("",)),
        ("key", "", ("**Bold:** item",)),
        ("key", "", ("line\rbreak",)),
    ],
)
def test_field_rejects_what_would_not_survive_a_round_trip(
    key: str, value: str, items: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match=r"Field\.(key|value|items)"):
        Field(key, value, items)


def test_field_rejects_items_that_are_not_a_tuple_of_strings() -> None:
    with pytest.raises(TypeError):
        Field("key", items=["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Field("key", items=(1,))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "heading", ["Metadata", "## System Context Layer", "CONTEXT STACK: x", "", "a\nb"]
)
def test_section_heading_must_be_one_line_and_not_structural(heading: str) -> None:
    with pytest.raises(ValueError, match=r"Section\.heading"):
        Section(heading)


@pytest.mark.parametrize(
    "text",
    [
        "\nstarts blank",
        "ends blank\n",
        "two\n\n\nblank lines",
        "# a heading",
        "- a bullet",
        "* a bullet",
        "**Key:** a field",
        "**Key**: a field",
        " indented",
    ],
)
def test_section_text_rejects_block_syntax_and_stray_blank_lines(text: str) -> None:
    with pytest.raises(ValueError, match=r"Section\.text"):
        Section("Notes", text=text)


def test_section_text_keeps_paragraphs_and_inline_markup() -> None:
    text = "First **bold** paragraph.\nSame paragraph: with a colon.\n\nSecond one."
    assert Section("Notes", text=text).text == text


@pytest.mark.parametrize("subtitle", ["*italic*", "_x", "y_", " padded"])
def test_layer_subtitle_must_survive_italics(subtitle: str) -> None:
    with pytest.raises(ValueError, match=r"Layer\.subtitle"):
        Layer(LayerKind.TASK, subtitle)


def test_stack_rejects_a_repeated_layer_kind() -> None:
    with pytest.raises(ValueError, match="repeat a layer kind"):
        ContextStack("t", layers=(Layer(LayerKind.TASK), Layer(LayerKind.TASK)))


def test_lookups_ignore_case_and_emoji() -> None:
    section = Section("🎯 Behavioral Constraints", fields=(Field("Tone", "calm"),))
    layer = Layer(LayerKind.SYSTEM, sections=(section,))
    stack = ContextStack("t", layers=(layer,))
    assert section.field("tone") == Field("Tone", "calm")
    assert section.field("Detail Level") is None
    assert layer.section("behavioral constraints") is section
    assert layer.section("Role Definition") is None
    assert stack.layer(LayerKind.SYSTEM) is layer
    assert stack.layer(LayerKind.TASK) is None


def test_heading_words_ignore_emoji_mojibake_and_markdown_marks() -> None:
    assert heading_key("## 🎯 System Context Layer") == "system context layer"
    assert heading_key("üéØ   System  Context Layer") == "system context layer"
    assert heading_key("**Metadata:**") == "metadata"
    assert structural_role("üèóÔ∏è CONTEXT STACK: x") == "title"
    assert structural_role("📋 Metadata") == "metadata"
    assert structural_role("Interaction Context Layer") == "interaction"
    assert structural_role("Context stacks explained") is None
    assert structural_role("Role Definition") is None


def test_schema_knows_every_layer_and_finds_sections_by_words() -> None:
    assert list(SCHEMA) == list(LayerKind)
    spec = section_spec("### success criteria")
    assert spec is not None
    assert spec.kind is SectionKind.ITEM_FIELDS
    assert spec.field_names == ("Functional", "Non-Functional")
    assert section_spec("Something Else") is None


def test_placeholder_is_snake_case_in_double_braces() -> None:
    assert placeholder("Core patterns applicable to this domain") == (
        "{{core_patterns_applicable_to_this_domain}}"
    )
    assert placeholder("Non-Functional") == "{{non_functional}}"


def test_blank_template_has_every_layer_section_and_field_as_placeholders() -> None:
    blank = blank_context_stack()
    assert blank.title == "{{title}}"
    assert [f.key for f in blank.metadata] == list(METADATA_FIELDS)
    assert [layer.kind for layer in blank.layers] == list(LayerKind)
    for kind, spec in SCHEMA.items():
        layer = blank.layer(kind)
        assert layer is not None
        assert layer.subtitle == spec.subtitle
        assert [s.heading for s in layer.sections] == [s.heading for s in spec.sections]
        for section_spec_ in spec.sections:
            section = layer.section(section_spec_.heading)
            assert section is not None
            for name in section_spec_.field_names:
                field = section.field(name)
                assert field is not None
                assert "{{" in field.value + "".join(field.items)
    system = blank.layer(LayerKind.SYSTEM)
    assert system is not None
    constraints = system.section("Behavioral Constraints")
    assert constraints is not None
    assert constraints.field("Tone") == Field("Tone", "{{tone}}")


@given(stacks)
def test_dict_round_trip_through_json_is_lossless(stack: ContextStack) -> None:
    data = json.loads(json.dumps(stack.to_dict()))
    assert ContextStack.from_dict(data) == stack


def test_to_dict_has_the_documented_shape() -> None:
    stack = ContextStack(
        "T",
        metadata=(Field("Author", "me"),),
        layers=(Layer(LayerKind.TASK, "Sub", (Section("Objective", "Do it."),)),),
    )
    assert stack.to_dict() == {
        "title": "T",
        "metadata": [{"key": "Author", "value": "me", "items": []}],
        "layers": [
            {
                "kind": "task",
                "subtitle": "Sub",
                "sections": [{"heading": "Objective", "text": "Do it.", "items": [], "fields": []}],
            }
        ],
    }


def test_from_dict_fills_optional_keys_with_defaults() -> None:
    data = {"title": "T", "layers": [{"kind": "system", "sections": [{"heading": "H"}]}]}
    assert ContextStack.from_dict(data) == ContextStack(
        "T", layers=(Layer(LayerKind.SYSTEM, sections=(Section("H"),)),)
    )


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ([], TypeError, r"stack must be an object"),
        ({}, ValueError, r"stack: missing keys \['title'\]"),
        ({"title": "T", "extra": 1}, ValueError, r"unknown keys \['extra'\]"),
        ({"title": 3}, TypeError, r"stack\.title must be a string"),
        ({"title": "T", "layers": {}}, TypeError, r"stack\.layers must be a list"),
        ({"title": "T", "layers": [{"kind": "nope"}]}, ValueError, r"layers\[0\]\.kind"),
        (
            {
                "title": "T",
                "layers": [{"kind": "task", "sections": [{"heading": "H", "items": [1]}]}],
            },
            TypeError,
            r"layers\[0\]\.sections\[0\]\.items\[0\] must be a string",
        ),
        (
            {"title": "T", "metadata": [{"key": "a:b"}]},
            ValueError,
            r"metadata\[0\]: Field\.key must not contain ':'",
        ),
        (
            {"title": "T", "layers": [{"kind": "task"}, {"kind": "task"}]},
            ValueError,
            r"stack: ContextStack\.layers must not repeat",
        ),
    ],
)
def test_from_dict_names_the_path_of_a_bad_shape(
    data: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ContextStack.from_dict(data)
