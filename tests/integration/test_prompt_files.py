"""User prompt files: good files load, malformed files name the file and the problem."""

from pathlib import Path

import pytest

from ctxfy.adapters.prompt_files import load_prompt_dir, load_prompt_file
from ctxfy.core.errors import ConfigurationError
from ctxfy.core.params import ParamType

GOOD = """---
name: release_notes
title: Release notes
description: Drafts release notes.
parameters:
  - name: changes
    type: list[string]
    required: true
    max_items: 20
    example: '["Add rotation"]'
  - name: tone
    type: enum
    choices: [formal, friendly]
  - name: limit
    type: integer
---
Write release notes.

{{changes}}
Tone: {{tone}}
At most {{limit}} lines. {{> context_stack_skeleton}}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_well_formed_file_becomes_a_typed_prompt(tmp_path: Path) -> None:
    spec = load_prompt_file(write(tmp_path, "notes.md", GOOD))
    assert spec.name == "release_notes"
    assert spec.source.endswith("notes.md")
    assert [(p.name, p.type, p.required) for p in spec.params] == [
        ("changes", ParamType.STRING_LIST, True),
        ("tone", ParamType.ENUM, False),
        ("limit", ParamType.INTEGER, False),
    ]
    assert spec.params[1].choices == ("formal", "friendly")


def test_the_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    spec = load_prompt_file(write(tmp_path, "daily.md", "---\ntitle: T\n---\nHello\n"))
    assert spec.name == "daily"
    assert spec.params == ()


def test_directory_loads_only_markdown_files_sorted(tmp_path: Path) -> None:
    write(tmp_path, "b.md", "---\n---\nB\n")
    write(tmp_path, "a.md", "---\n---\nA\n")
    write(tmp_path, "notes.txt", "ignored")
    assert [s.name for s in load_prompt_dir(tmp_path)] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no front matter", "must start with a '---' line"),
        ("---\ntitle: x\n", "not closed"),
        ("---\ntitle: [unclosed\n---\nx\n", "not valid YAML"),
        ("---\n- a list\n---\nx\n", "must be a mapping"),
        ("---\ntitel: x\n---\nx\n", "unknown front matter key 'titel'"),
        ("---\ntitle: x\n---\n\n", "template after the front matter is empty"),
        ("---\nparameters: nope\n---\nx\n", "'parameters' must be a list"),
        ("---\nparameters:\n  - type: string\n---\nx\n", "'name' is required"),
        ("---\nparameters:\n  - name: a\n    type: float\n---\n{{a}}\n", "'type' must be one of"),
        ("---\nparameters:\n  - name: a\n    required: maybe\n---\n{{a}}\n", "'required' must be"),
        ("---\nparameters:\n  - name: a\n    max_len: 3\n---\n{{a}}\n", "unknown key 'max_len'"),
        ("---\nparameters:\n  - name: Bad\n---\nx\n", "lower-case identifier"),
        ("---\nparameters:\n  - name: a\n    type: enum\n---\n{{a}}\n", "no choices"),
        ("---\n---\nHello {{who}}\n", "declares no such parameter"),
        ("---\nname: Bad Name\n---\nx\n", "prompt name"),
    ],
)
def test_a_malformed_file_names_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, "broken.md", text)
    with pytest.raises(ConfigurationError) as info:
        load_prompt_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert problem in message


def test_non_utf8_and_missing_directories_are_configuration_errors(tmp_path: Path) -> None:
    path = tmp_path / "latin1.md"
    path.write_bytes("---\n---\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigurationError, match="not valid UTF-8"):
        load_prompt_file(path)
    with pytest.raises(ConfigurationError, match="is not a directory"):
        load_prompt_dir(tmp_path / "missing")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "---\nparameters:\n  - name: a\n  - name: spare\n---\n{{a}}\n",
            "parameter 'spare' is declared but the template never uses {{spare}}",
        ),
        (
            "---\nparameters:\n  - name: a\n    max_length: 3\n    example: abcd\n---\n{{a}}\n",
            "parameter 'a': 'example' 'abcd' breaks the declaration: "
            "a is 4 characters long; the limit is 3",
        ),
        (
            "---\nparameters:\n  - name: a\n    pattern: '[0-9]+'\n    example: v1\n---\n{{a}}\n",
            "parameter 'a': 'example' 'v1' breaks the declaration: a must match the pattern",
        ),
        (
            "---\nparameters:\n  - name: a\n    type: enum\n    choices: [x, y]\n"
            "    example: z\n---\n{{a}}\n",
            "parameter 'a': 'example' 'z' breaks the declaration: a must be one of: x, y",
        ),
        (
            "---\nparameters:\n  - name: n\n    type: integer\n    example: many\n---\n{{n}}\n",
            "parameter 'n': 'example' 'many' breaks the declaration",
        ),
    ],
)
def test_unused_parameters_and_invalid_examples_stop_loading(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, "broken.md", text)
    with pytest.raises(ConfigurationError) as info:
        load_prompt_file(path)
    assert str(info.value).startswith(f"{path}: {problem}")


def test_a_parameter_used_only_on_an_optional_line_counts_as_used(tmp_path: Path) -> None:
    text = "---\nparameters:\n  - name: a\n  - name: b\n---\nFirst {{a}}\nThen {{b}}\n"
    spec = load_prompt_file(write(tmp_path, "ok.md", text))
    assert [p.name for p in spec.params] == ["a", "b"]


def test_a_core_error_names_the_parameter_once(tmp_path: Path) -> None:
    path = write(tmp_path, "enum.md", "---\nparameters:\n  - name: a\n    type: enum\n---\n{{a}}\n")
    with pytest.raises(ConfigurationError) as info:
        load_prompt_file(path)
    assert str(info.value) == f"{path}: parameter 'a' is an enum but declares no choices"
