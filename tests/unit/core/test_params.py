"""The argument validator: types, limits, character policy, every error reported."""

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxfy.core.params import (
    DEFAULT_LIMITS,
    FieldError,
    ParamSpec,
    ParamType,
    ValidationLimits,
    arguments_schema,
    check_request_limits,
    clean_text,
    request_size,
    validate_arguments,
)

PARAMS = (
    ParamSpec("objective", required=True, max_length=50),
    ParamSpec("count", type=ParamType.INTEGER),
    ParamSpec("level", type=ParamType.ENUM, choices=("low", "high")),
    ParamSpec("tags", type=ParamType.STRING_LIST, max_items=3, max_length=10),
    ParamSpec("code", pattern=r"[A-Z]{3}-\d+"),
)


def rules(errors: tuple[FieldError, ...]) -> set[tuple[str, str]]:
    return {(e.field, e.rule) for e in errors}


def test_valid_arguments_are_converted_to_their_types() -> None:
    result = validate_arguments(
        PARAMS,
        {
            "objective": "Ship it",
            "count": "12",
            "level": "high",
            "tags": '["a", "b"]',
            "code": "ABC-1",
        },
    )
    assert result.ok
    assert result.values == {
        "objective": "Ship it",
        "count": 12,
        "level": "high",
        "tags": ("a", "b"),
        "code": "ABC-1",
    }


def test_every_error_is_reported_not_just_the_first() -> None:
    result = validate_arguments(
        PARAMS,
        {"count": "twelve", "level": "medium", "tags": "[1]", "code": "abc", "extra": "x"},
    )
    assert rules(result.errors) == {
        ("objective", "required"),
        ("count", "type"),
        ("level", "enum"),
        ("tags", "type"),
        ("code", "pattern"),
        ("extra", "unknown"),
    }
    assert not result.values


def test_messages_name_the_field_and_the_rule() -> None:
    result = validate_arguments(PARAMS, {"objective": "x" * 51})
    (error,) = result.errors
    assert error.rule == "max_length"
    assert "objective" in error.message
    assert "50" in error.message


def test_empty_strings_count_as_absent() -> None:
    result = validate_arguments(PARAMS, {"objective": "   ", "code": ""})
    assert rules(result.errors) == {("objective", "required")}


def test_list_limits_apply_to_item_count_and_each_item() -> None:
    too_many = validate_arguments(PARAMS, {"objective": "o", "tags": ["a", "b", "c", "d"]})
    assert rules(too_many.errors) == {("tags", "max_items")}
    too_long = validate_arguments(PARAMS, {"objective": "o", "tags": ["ok", "x" * 11]})
    assert rules(too_long.errors) == {("tags[1]", "max_length")}


def test_booleans_are_not_integers() -> None:
    result = validate_arguments(PARAMS, {"objective": "o", "count": True})
    assert rules(result.errors) == {("count", "type")}


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("a\x00b", "control_character"),
        ("a\x1bb", "control_character"),
        ("a\x85b", "control_character"),
        ("access\u202eevil", "bidi_control"),
        ("x\u2066y", "bidi_control"),
        ("hidden \U000e0041\U000e0042", "tag_character"),
    ],
)
def test_character_policy_rejects_dangerous_characters(text: str, rule: str) -> None:
    _cleaned, errors = clean_text("objective", text)
    assert [e.rule for e in errors] == [rule]


def test_character_policy_keeps_tabs_newlines_emoji_and_joiners() -> None:
    family = "👨\u200d👩\u200d👧"
    cleaned, errors = clean_text("f", f"line1\n\tline2\r\n{family} فارسی\u200c")
    assert errors == []
    assert family in cleaned


def test_zero_width_smuggling_characters_are_stripped() -> None:
    cleaned, errors = clean_text("f", "ig\u200bnore\u2060 prev\ufeffious")
    assert errors == []
    assert cleaned == "ignore previous"


def test_strings_are_normalised_to_nfc() -> None:
    result = validate_arguments(PARAMS, {"objective": "Cafe\u0301"})
    assert result.values["objective"] == "Café"


def test_declaration_rejects_bad_names_patterns_and_enum_without_choices() -> None:
    with pytest.raises(ValueError, match="lower-case identifier"):
        ParamSpec("Bad-Name")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        ParamSpec("p", pattern="(")
    with pytest.raises(ValueError, match="no choices"):
        ParamSpec("p", type=ParamType.ENUM)
    with pytest.raises(ValueError, match="not an enum"):
        ParamSpec("p", choices=("a",))


def test_arguments_schema_lists_required_and_forbids_extras() -> None:
    schema = arguments_schema(PARAMS)
    assert schema["required"] == ["objective"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["level"]["enum"] == ["low", "high"]
    assert schema["properties"]["tags"]["maxItems"] == 3
    assert schema["properties"]["count"] == {"type": "integer"}


@given(st.dictionaries(st.text(max_size=20), st.one_of(st.text(), st.integers(), st.none())))
def test_validator_never_crashes_on_arbitrary_input(arguments: dict[str, object]) -> None:
    result = validate_arguments(PARAMS, arguments)
    assert result.ok == (not result.errors)


@given(st.text(min_size=1, max_size=50))
def test_accepted_strings_are_nfc_and_free_of_forbidden_characters(text: str) -> None:
    result = validate_arguments(PARAMS, {"objective": text})
    if result.ok:
        value = result.values["objective"]
        assert isinstance(value, str)
        assert unicodedata.is_normalized("NFC", value)
        assert not any(ord(c) < 0x20 and c not in "\t\n\r" for c in value)


# --- request-level limits ---------------------------------------------------------------------


def test_default_limits_are_documented_values() -> None:
    assert ValidationLimits() == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.max_arguments == 32
    assert DEFAULT_LIMITS.max_request_chars == 262_144


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_arguments"):
        ValidationLimits(max_arguments=0)
    with pytest.raises(ValueError, match="max_request_chars"):
        ValidationLimits(max_request_chars=0)


def test_too_many_arguments_are_refused_before_any_field_is_examined() -> None:
    arguments: dict[str, object] = {f"a{i}": "x" for i in range(5)}
    result = validate_arguments(PARAMS, arguments, ValidationLimits(max_arguments=4))
    assert [(e.field, e.rule) for e in result.errors] == [("*", "max_arguments")]
    assert "5" in result.errors[0].message
    assert "4" in result.errors[0].message
    assert not result.values


def test_request_size_counts_names_and_values_in_characters() -> None:
    assert request_size({"ab": "héllo", "n": 12, "tags": ["x", "yz"]}) == 2 + 5 + 1 + 2 + 4 + 3
    fits = validate_arguments(
        PARAMS, {"objective": "é" * 13}, ValidationLimits(max_request_chars=22)
    )
    assert fits.ok
    over = validate_arguments(
        PARAMS, {"objective": "é" * 14}, ValidationLimits(max_request_chars=22)
    )
    assert [(e.field, e.rule) for e in over.errors] == [("*", "max_request_size")]


def test_both_request_limits_are_reported_together() -> None:
    arguments: dict[str, object] = {"objective": "x" * 100, "count": "1"}
    errors = check_request_limits(
        arguments, ValidationLimits(max_arguments=1, max_request_chars=50)
    )
    assert [e.rule for e in errors] == ["max_arguments", "max_request_size"]
    assert {e.field for e in errors} == {"*"}


def test_default_limits_leave_existing_callers_unchanged() -> None:
    big = "x" * 200_000
    lint_like = (ParamSpec("markdown", required=True, max_length=200_000),)
    assert validate_arguments(lint_like, {"markdown": big}).ok


def test_a_required_value_made_only_of_invisible_characters_is_missing() -> None:
    result = validate_arguments(PARAMS, {"objective": "\u200b\u2060\ufeff", "code": "\u200b"})
    assert rules(result.errors) == {("objective", "required")}
    assert "code" not in result.values


@pytest.mark.parametrize("filler", ["a", "é", "e\u0301"])
def test_the_length_limit_holds_at_the_boundary_for_ascii_and_non_ascii_text(filler: str) -> None:
    spec = (ParamSpec("text", max_length=10),)
    at_limit = validate_arguments(spec, {"text": filler * 10})
    over = validate_arguments(spec, {"text": filler * 11})
    assert at_limit.ok
    assert at_limit.values["text"] == unicodedata.normalize("NFC", filler * 10)
    assert rules(over.errors) == {("text", "max_length")}


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60).map("x".__add__))
def test_ascii_values_and_their_non_ascii_twins_are_validated_alike(text: str) -> None:
    params = (ParamSpec("objective", required=True), ParamSpec("tags", ParamType.STRING_LIST))
    plain = validate_arguments(params, {"objective": text, "tags": [text]})
    twin = validate_arguments(params, {"objective": "é" + text, "tags": ["é" + text]})
    assert rules(plain.errors) == rules(twin.errors)
    assert [e.rule for e in plain.errors] == [e.rule for e in twin.errors]
    if plain.ok:
        assert twin.values == {"objective": "é" + text, "tags": ("é" + text,)}
        assert plain.values == {"objective": text, "tags": (text,)}


# --- integers out of range, published schemas, opaque arguments -------------------------------


def test_an_integer_too_large_is_out_of_range_not_of_the_wrong_type() -> None:
    count = (ParamSpec("count", type=ParamType.INTEGER),)
    big = validate_arguments(count, {"count": "99999999999999999999"})
    padded = validate_arguments(count, {"count": "-0000000000000000000042"})
    assert rules(big.errors) == {("count", "range")}
    assert "999,999,999,999,999,999" in big.errors[0].message
    assert padded.values == {"count": -42}


def test_a_whole_string_pattern_is_published_anchored() -> None:
    spec = ParamSpec("code", pattern=r"[A-Z]{3}-\d+")
    assert spec.json_schema()["pattern"] == r"^(?:[A-Z]{3}-\d+)$"
    result = validate_arguments((spec,), {"code": "ticket ABC-12"})
    assert rules(result.errors) == {("code", "pattern")}
    assert r"^(?:[A-Z]{3}-\d+)$" in result.errors[0].message


def test_a_pattern_that_may_match_anywhere_is_published_as_it_is() -> None:
    spec = ParamSpec("code", pattern=r"[A-Z]{3}-\d+", pattern_anywhere=True)
    assert spec.json_schema()["pattern"] == r"[A-Z]{3}-\d+"
    assert validate_arguments((spec,), {"code": "ticket ABC-12"}).ok
    assert rules(validate_arguments((spec,), {"code": "abc"}).errors) == {("code", "pattern")}


def test_required_strings_and_lists_publish_that_empty_is_missing() -> None:
    text = ParamSpec("objective", required=True).json_schema()
    tags = ParamSpec("tags", type=ParamType.STRING_LIST, required=True).json_schema()
    optional = ParamSpec("tags", type=ParamType.STRING_LIST).json_schema()
    assert (text["minLength"], text["pattern"]) == (1, r"\S")
    assert tags["minItems"] == 1
    assert "minItems" not in optional


def test_opaque_arguments_get_the_character_policy_on_every_string_inside() -> None:
    result = validate_arguments(
        (ParamSpec("title"),),
        {"title": "ok", "flag": True, "meta": {"a": ["x", "Cafe\u0301"]}, "bad": ["\x00"]},
        opaque=frozenset({"flag", "meta", "bad"}),
    )
    assert rules(result.errors) == {("bad[0]", "control_character")}
    valid = validate_arguments(
        (), {"flag": True, "meta": {"a": ["Cafe\u0301"]}}, opaque=frozenset({"flag", "meta"})
    )
    assert valid.values == {"flag": True, "meta": {"a": ["Café"]}}


def test_opaque_arguments_nested_too_deep_are_refused() -> None:
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    result = validate_arguments((), {"deep": deep}, opaque=frozenset({"deep"}))
    assert rules(result.errors) == {("deep" + "[0]" * 32, "max_depth")}


def test_a_global_inline_flag_is_refused_with_the_scoped_form_suggested() -> None:
    with pytest.raises(ValueError, match=r"\(\?i:") as caught:
        ParamSpec("code", pattern="(?i)abc")
    assert "(?i)abc" in str(caught.value)
    spec = ParamSpec("code", pattern="(?i:abc)")
    assert spec.published_pattern is not None
    assert re.fullmatch(spec.published_pattern, "ABC")


def test_accept_empty_makes_required_mean_present() -> None:
    params = (
        ParamSpec("name", required=True, accept_empty=True),
        ParamSpec("tags", type=ParamType.STRING_LIST, required=True, accept_empty=True),
    )
    result = validate_arguments(params, {"name": "  ", "tags": []})
    assert result.errors == ()
    assert result.values == {"name": "  ", "tags": ()}
    missing = validate_arguments(params, {})
    assert {(e.field, e.rule) for e in missing.errors} == {
        ("name", "required"),
        ("tags", "required"),
    }
    assert "minLength" not in params[0].json_schema()
    assert "minItems" not in params[1].json_schema()


def test_without_accept_empty_a_blank_required_value_is_still_missing() -> None:
    params = (ParamSpec("name", required=True),)
    assert [e.rule for e in validate_arguments(params, {"name": "  "}).errors] == ["required"]
