"""The JSON Schema ctxfy publishes says what validate_arguments enforces.

For typed values made only of characters the character policy leaves alone, a JSON Schema
validator (the ``jsonschema`` package) and :func:`validate_arguments` agree on every
arguments object, with one documented exception: ECMA-262's ``$``, which JSON Schema
patterns use, matches only at the end of the text, while Python's ``re`` (and so the
``jsonschema`` package) also matches before a final newline. ctxfy checks whole-string
patterns as ECMA-262 reads the published ``^(?:...)$``, so it refuses ``"ABC-12\n"``.
"""

import unicodedata

import jsonschema  # type: ignore[import-untyped]  # installed with mcp; no stubs
from hypothesis import given
from hypothesis import strategies as st

from ctxfy.core.params import ParamSpec, ParamType, arguments_schema, validate_arguments

PATTERN = r"[A-Z]{3}-\d+"
PARAMS = (
    ParamSpec("objective", required=True, max_length=12),
    ParamSpec("code", required=True, pattern=PATTERN),
    ParamSpec("tags", type=ParamType.STRING_LIST, required=True, max_items=3, max_length=5),
    ParamSpec("level", type=ParamType.ENUM, choices=("low", "high")),
    ParamSpec("ref", pattern=r"#\d{1,4}", max_length=6),
    ParamSpec("count", type=ParamType.INTEGER),
)
VALIDATOR = jsonschema.Draft202012Validator(arguments_schema(PARAMS))

# Letters, digits, punctuation, spaces and symbols of several scripts, no controls, no
# invisible characters; NFC only, since the schema counts the length of what is sent and
# ctxfy the length once normalised.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(" \t\n-#_ABCXYZabc0123456789"),
        st.characters(categories=("L", "N", "P", "S", "Zs")),
    ),
    max_size=16,
).filter(lambda s: unicodedata.is_normalized("NFC", s))
PRESENT_TEXT = TEXT.filter(str.strip)  # an optional value of only spaces counts as absent


def value_for(pattern: str, max_size: int) -> st.SearchStrategy[str]:
    near = st.from_regex(pattern, fullmatch=True).map(lambda s: s[:max_size])
    return st.one_of(near, near.map(lambda s: "x " + s), near.map(lambda s: s + "\n"), TEXT)


ARGUMENTS = st.fixed_dictionaries(
    {
        "objective": TEXT,
        "code": value_for(PATTERN, 20),
        "tags": st.lists(TEXT, max_size=4),
    },
    optional={
        "level": st.one_of(st.sampled_from(["low", "high"]), PRESENT_TEXT),
        "ref": st.one_of(value_for(r"#\d{1,4}", 6), PRESENT_TEXT),
        "count": st.integers(),
        "extra": TEXT,
    },
)


@given(ARGUMENTS)
def test_the_published_schema_and_the_validator_agree(arguments: dict[str, object]) -> None:
    schema_ok = VALIDATOR.is_valid(arguments)
    ctxfy_ok = validate_arguments(PARAMS, arguments).ok
    if schema_ok != ctxfy_ok:
        # The one difference: Python's "$" also matches before a final newline.
        assert schema_ok
        patterned = [arguments.get(p.name) for p in PARAMS if p.pattern is not None]
        assert any(isinstance(v, str) and v.endswith("\n") for v in patterned)


def test_a_whole_string_pattern_refuses_text_around_a_match_in_both() -> None:
    arguments = {"objective": "x", "code": "ticket ABC-12", "tags": ["a"]}
    assert not VALIDATOR.is_valid(arguments)
    assert not validate_arguments(PARAMS, arguments).ok
