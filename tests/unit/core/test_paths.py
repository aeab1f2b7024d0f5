"""Pure path confinement: the text rules, before any file system is involved."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxfy.core.errors import InvalidArgumentsError
from ctxfy.core.paths import UnsafePathError, confine_path, safe_relative_parts


def rule_of(candidate: str) -> str:
    with pytest.raises(UnsafePathError) as info:
        safe_relative_parts(candidate, field="note")
    (error,) = info.value.errors
    assert error.field == "note"
    return error.rule


@pytest.mark.parametrize(
    ("candidate", "parts"),
    [
        ("a.md", ("a.md",)),
        ("notes/2026/q1.md", ("notes", "2026", "q1.md")),
        ("./notes//q1.md", ("notes", "q1.md")),
        ("notes/", ("notes",)),
        ("..a/b..", ("..a", "b..")),
        ("rapport-été.md", ("rapport-été.md",)),
    ],
)
def test_relative_paths_are_split_into_clean_segments(
    candidate: str, parts: tuple[str, ...]
) -> None:
    assert safe_relative_parts(candidate) == parts


@pytest.mark.parametrize(
    ("candidate", "rule"),
    [
        ("/etc/passwd", "path_absolute"),
        ("~/.ssh/id_rsa", "path_absolute"),
        ("C:/Windows/win.ini", "path_absolute"),
        ("c:secret", "path_absolute"),
        ("..\\..\\boot.ini", "path_backslash"),
        ("notes\\a.md", "path_backslash"),
        ("../etc/passwd", "path_traversal"),
        ("notes/../../etc", "path_traversal"),
        ("notes/./..", "path_traversal"),
        ("", "path_empty"),
        ("./", "path_empty"),
        ("a" * 1025, "path_too_long"),
        ("x/" + "b" * 256, "path_too_long"),
        ("a\x00.md", "control_character"),
        ("a\u202egpj.exe", "bidi_control"),
        ("a\U000e0041.md", "tag_character"),
    ],
)
def test_unsafe_paths_are_refused_with_a_named_rule(candidate: str, rule: str) -> None:
    assert rule_of(candidate) == rule


def test_invisible_characters_cannot_hide_a_traversal() -> None:
    assert rule_of(".\u200b./etc") == "path_traversal"


def test_errors_are_argument_errors_and_do_not_repeat_the_path() -> None:
    with pytest.raises(InvalidArgumentsError) as info:
        confine_path("/srv/notes", "../../secret-name")
    assert "secret-name" not in str(info.value)


def test_confine_path_joins_to_the_root() -> None:
    assert confine_path("/srv/notes", "2026/./q1.md") == "/srv/notes/2026/q1.md"
    assert confine_path("/srv/notes/", "q1.md") == "/srv/notes/q1.md"
    assert confine_path("/", "q1.md") == "/q1.md"


def test_confine_path_requires_an_absolute_root() -> None:
    with pytest.raises(ValueError, match="absolute"):
        confine_path("srv/notes", "q1.md")


@given(st.text(max_size=60))
def test_an_accepted_path_always_stays_under_the_root(candidate: str) -> None:
    try:
        joined = confine_path("/srv/notes", candidate)
    except UnsafePathError:
        return
    assert joined.startswith("/srv/notes/")
    assert ".." not in joined.split("/")
    assert "\x00" not in joined
