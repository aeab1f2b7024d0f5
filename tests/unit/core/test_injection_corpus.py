"""The attack and benign corpora under tests/data, run through validation, rendering and the
detector exactly as a prompts/get request is.

Every attack must be rejected (by the rule the corpus names), neutralised (proved on the
rendered prompt) or flagged (by the pattern the corpus names). Every benign input must
validate, render inside its own block, and not be flagged.
"""

import json
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ctxfy.core.charpolicy import DEFAULT_IGNORABLE_CLASS
from ctxfy.core.injection import PATTERNS, detect_injection
from ctxfy.core.params import ValidationResult, validate_arguments
from ctxfy.core.prompt import DATA_NOTICE, PromptSpec, escape_user_text, render_prompt
from ctxfy.prompts import CONTEXT_STACK, PRP, TECHNICAL_SPEC, builtin_blocks

DATA = Path(__file__).parents[2] / "data"
FIXTURES = Path(__file__).parents[2] / "fixtures"
PROMPTS = {spec.name: spec for spec in (CONTEXT_STACK, PRP, TECHNICAL_SPEC)}
FILLER = "Ship the invoicing feature"
SENTINEL = "SENTINEL-7f3a"
OPEN_RE = re.compile(r'<user_input name="(\w+)">')
CLOSE = "</user_input>"
IGNORABLE = re.compile(DEFAULT_IGNORABLE_CLASS)
DELIMITER_RE = re.compile(r"</?user_input")
LOOK_ALIKE_LT = "\ufe64\uff1c\u2039\u2329\u3008\u27e8\u02c2\u1438"
NEUTRALISERS = {"single_pass_rendering", "delimiter_escaping", "invisible_stripped"}
EXPECT_KEYS = {"rejected_by", "flagged", "neutralised", "cleaned"}


def load(name: str) -> list[dict[str, Any]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


ATTACKS = load("injection_attacks.jsonl")
BENIGN = load("benign_inputs.jsonl")


def value_of(entry: Mapping[str, Any]) -> str:
    if "repeat" in entry:
        return str(entry["repeat"]) * int(entry["times"])
    return str(entry["value"])


def arguments_for(entry: Mapping[str, Any]) -> dict[str, object]:
    spec = PROMPTS[entry["prompt"]]
    required = next(p.name for p in spec.params if p.required)
    arguments: dict[str, object] = {entry["field"]: value_of(entry)}
    arguments.setdefault(required, FILLER)
    return arguments


def validate(entry: Mapping[str, Any]) -> tuple[PromptSpec, ValidationResult]:
    spec = PROMPTS[entry["prompt"]]
    return spec, validate_arguments(spec.params, arguments_for(entry))


def assert_segregated(spec: PromptSpec, values: Mapping[str, object]) -> str:
    """Render and prove that each value sits, escaped, in exactly one block of its own."""
    text = render_prompt(spec, values, builtin_blocks())
    assert text.startswith(DATA_NOTICE)
    names = OPEN_RE.findall(text)
    assert sorted(names) == sorted(values)
    assert text.count(CLOSE) == len(values)
    for name, value in values.items():
        block = f'<user_input name="{name}">\n{escape_user_text(str(value))}\n{CLOSE}'
        assert text.count(block) == 1
    return text


def folded(text: str) -> str:
    """Read ``text`` as a model might: NFKC, case folded, look-alikes of < read as <, and
    whitespace and invisible format characters (zero-width joiners...) removed."""
    text = re.sub(f"[{LOOK_ALIKE_LT}]", "<", unicodedata.normalize("NFKC", text).casefold())
    return "".join(
        c
        for c in text
        if not (c.isspace() or unicodedata.category(c) == "Cf" or IGNORABLE.match(c))
    )


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [str(entry["id"]) for entry in entries]


# --- the corpus files themselves ---------------------------------------------------------------


def test_corpora_are_large_enough_and_well_formed() -> None:
    assert len(ATTACKS) >= 60
    assert len(BENIGN) >= 60
    for corpus in (ATTACKS, BENIGN):
        assert len(set(ids(corpus))) == len(corpus)
        for entry in corpus:
            assert entry["prompt"] in PROMPTS
            assert ("value" in entry) != ("repeat" in entry and "times" in entry)
    for entry in ATTACKS:
        expect = entry["expect"]
        assert set(expect) <= EXPECT_KEYS
        assert ("rejected_by" in expect) != bool({"flagged", "neutralised"} & set(expect))
        assert expect.get("flagged", "chat_template_token") in PATTERNS
        assert expect.get("neutralised", "single_pass_rendering") in NEUTRALISERS
        assert entry["why"]


def test_attack_corpus_covers_every_family() -> None:
    values = [value_of(entry) for entry in ATTACKS]
    assert any("\x00" in v for v in values)
    assert any("\u202e" in v for v in values)
    assert any(any(0xE0000 <= ord(c) <= 0xE007F for c in v) for v in values)
    assert any("\u200b" in v for v in values)
    flagged = {entry["expect"].get("flagged") for entry in ATTACKS}
    assert flagged >= set(PATTERNS)
    rejected = {entry["expect"].get("rejected_by") for entry in ATTACKS}
    assert rejected >= {
        "control_character",
        "bidi_control",
        "tag_character",
        "max_length",
        "max_request_size",
        "unknown",
        "enum",
        "required",
    }


def test_invisible_characters_are_written_as_json_escapes() -> None:
    raw = (DATA / "injection_attacks.jsonl").read_text(encoding="utf-8")
    assert "\\u202e" in raw
    assert "\\udb40\\udc69" in raw  # a tag character, as a surrogate pair
    invisible = set("\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u180e\u00ad\u202a\u202e\u2066")
    for line in raw.splitlines():
        assert not any(ch in invisible or unicodedata.category(ch) == "Cc" for ch in line)


# --- attacks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ATTACKS, ids=ids(ATTACKS))
def test_every_attack_is_rejected_neutralised_or_flagged(entry: dict[str, Any]) -> None:
    expect = entry["expect"]
    field = entry["field"]
    spec, result = validate(entry)
    if "rejected_by" in expect:
        rule = expect["rejected_by"]
        assert not result.ok
        broken = {(e.field, e.rule) for e in result.errors}
        assert ("*" if rule.startswith("max_request") else field, rule) in broken
        return
    assert result.ok, result.errors
    text = assert_segregated(spec, result.values)
    value = str(result.values[field])
    findings = {f.pattern for f in detect_injection(result.values).findings if f.field == field}
    if "flagged" in expect:
        assert expect["flagged"] in findings
    else:
        assert findings == set()
    how = expect.get("neutralised")
    if how == "single_pass_rendering":
        # The value went in literally and changed nothing else: rendering it gives the same
        # prompt as rendering a harmless sentinel, with the sentinel replaced by the value.
        assert escape_user_text(value) == value
        sentinel = {**result.values, field: SENTINEL}
        expected = render_prompt(spec, sentinel, builtin_blocks()).replace(SENTINEL, value)
        assert text == expected
    elif how == "delimiter_escaping":
        block = text.split(f'<user_input name="{field}">\n', 1)[1].split(f"\n{CLOSE}", 1)[0]
        assert not DELIMITER_RE.search(folded(block))
    elif how == "invisible_stripped":
        assert value == expect["cleaned"]


# --- benign inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("entry", BENIGN, ids=ids(BENIGN))
def test_every_benign_input_validates_renders_and_is_not_flagged(entry: dict[str, Any]) -> None:
    spec, result = validate(entry)
    assert result.ok, result.errors
    value = value_of(entry)
    assert result.values[entry["field"]] == unicodedata.normalize("NFC", value)
    text = assert_segregated(spec, result.values)
    assert f'<user_input name="{entry["field"]}">\n{value}\n{CLOSE}' in text
    assert detect_injection(result.values).findings == ()


def test_benign_corpus_covers_the_hard_cases() -> None:
    text = "\n".join(value_of(entry) for entry in BENIGN)
    for needle in ("SELECT", "WHERE", "DROP TABLE", "|---|", '{"', "system prompt", "\u200c"):
        assert needle in text
    for script in ("CJK", "ARABIC", "DEVANAGARI", "HIRAGANA", "CYRILLIC", "HEBREW"):
        assert any(script in unicodedata.name(ch, "") for ch in text)
    assert "\u200d" in text  # emoji ZWJ sequences


@pytest.mark.parametrize(
    "fixture", ["context-stack-ctxfy-production.md", "context-stack-ctxfy-production.mojibake.txt"]
)
def test_the_seed_context_stacks_are_not_flagged(fixture: str) -> None:
    seed = (FIXTURES / fixture).read_text(encoding="utf-8")
    assert detect_injection({"markdown": seed}).findings == ()
