"""The character policy's fast path for ASCII text agrees with its general path."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxfy.core.charpolicy import (
    DEFAULT_IGNORABLE_RANGES,
    MAX_NESTING,
    FieldError,
    clean_text,
    clean_value,
)

ASCII_CONTROLS = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)]
ASCII_TEXT = st.text(alphabet=st.characters(max_codepoint=0x7F))
POLICY_ORDER = ["control_character", "bidi_control", "tag_character"]
TWIN = "é"  # precomposed, so it never combines with the ASCII character before it


def rules(errors: list[FieldError]) -> list[str]:
    return [e.rule for e in errors]


@pytest.mark.parametrize("control", ASCII_CONTROLS)
def test_each_ascii_control_is_rejected_like_its_non_ascii_twin(control: str) -> None:
    ascii_text, ascii_errors = clean_text("f", f"a{control}b")
    twin_text, twin_errors = clean_text("f", f"{TWIN}{control}b")
    assert rules(ascii_errors) == rules(twin_errors) == ["control_character"]
    assert (ascii_text, twin_text) == (f"a{control}b", f"{TWIN}{control}b")


@pytest.mark.parametrize("allowed", ["\t", "\n", "\r", " ", "~", "plain text\r\nline two\t."])
def test_tab_newline_and_printable_ascii_pass_the_fast_path_unchanged(allowed: str) -> None:
    text, errors = clean_text("f", allowed)
    assert errors == []
    assert text is allowed


@given(ASCII_TEXT)
def test_ascii_text_and_its_non_ascii_twin_get_the_same_verdict(text: str) -> None:
    ascii_text, ascii_errors = clean_text("f", text)
    twin_text, twin_errors = clean_text("f", text + TWIN)
    assert ascii_errors == twin_errors
    assert twin_text == ascii_text + TWIN
    assert ascii_text == text  # ASCII is already NFC and holds nothing to strip


@given(ASCII_TEXT, st.sampled_from(["\u202e", "\u200b", "\U000e0041", "\x85", "e\u0301", "\u00ad"]))
def test_non_ascii_suspects_after_ascii_text_take_the_general_path(text: str, suspect: str) -> None:
    cleaned, errors = clean_text("f", text + suspect)
    found = set(rules(clean_text("f", text)[1]) + rules(clean_text("f", suspect)[1]))
    assert rules(errors) == [rule for rule in POLICY_ORDER if rule in found]
    stripped = (text + suspect).replace("\u200b", "").replace("\u00ad", "")
    assert cleaned == unicodedata.normalize("NFC", stripped)


def test_every_string_inside_a_json_value_gets_the_policy_and_nfc() -> None:
    value = {"Cafe\u0301": ["Zu\u0308rich", 1.5, True, None], "n": 3}
    cleaned, errors = clean_value("meta", value)
    assert errors == []
    assert cleaned == {"Cafe\u0301": ["Zürich", 1.5, True, None], "n": 3}  # keys as sent


def test_strings_inside_a_json_value_are_refused_by_their_path() -> None:
    value = {"k\u202e": "ok", "list": ["fine", {"deep": "a\x00"}]}
    _, errors = clean_value("meta", value)
    assert [(e.field, e.rule) for e in errors] == [
        ("meta.k\\u202e", "bidi_control"),  # the field shows the key escaped
        ("meta.list[1].deep", "control_character"),
    ]


def test_a_key_with_a_character_the_policy_strips_is_refused_not_changed() -> None:
    value, errors = clean_value("meta", {"own\u200ber": "Ada", "ok": {"a\u00adb": 1}})
    assert [(e.field, e.rule) for e in errors] == [
        ("meta.own\\u200ber", "invisible_character"),
        ("meta.ok.a\\xadb", "invisible_character"),
    ]
    assert "meta.own\\u200ber" in errors[0].message
    assert value == {"own\u200ber": "Ada", "ok": {"a\u00adb": 1}}


def test_a_key_with_a_joiner_is_accepted_as_sent() -> None:
    key = "\U0001f469\u200d\U0001f4bb"  # woman technologist: the joiner is meant
    assert clean_value("meta", {key: "x"}) == ({key: "x"}, [])


def test_values_are_followed_to_the_nesting_limit_and_refused_beyond() -> None:
    deep: object = "a\x00"
    for _ in range(MAX_NESTING):
        deep = {"k": deep}
    assert [e.rule for e in clean_value("meta", deep)[1]] == ["control_character"]
    assert [e.rule for e in clean_value("meta", {"k": deep})[1]] == ["max_depth"]


def test_the_default_ignorable_ranges_hold_only_invisible_code_points() -> None:
    for low, high in DEFAULT_IGNORABLE_RANGES:
        assert low <= high
        for code in range(low, high + 1):
            char = chr(code)
            category = unicodedata.category(char)
            fillers = {0x115F, 0x1160, 0x3164, 0xFFA0}
            assert category in {"Cf", "Cn", "Mn"} or code in fillers, hex(code)
    covered = {c for low, high in DEFAULT_IGNORABLE_RANGES for c in range(low, high + 1)}
    # The characters that forged a delimiter before they were counted, and familiar ones.
    assert {0x034F, 0xE0100, 0x180B, 0x17B4, 0x115F, 0x3164, 0x200D, 0xFE0F, 0x2060} <= covered
    assert not covered & {0x20, 0x0600, 0x0301, 0x200A}  # visible, or not ignorable
