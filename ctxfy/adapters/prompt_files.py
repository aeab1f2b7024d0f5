"""User prompts from Markdown files with YAML front matter (``CTXFY_PROMPTS_DIR``).

A prompt file looks like this::

    ---
    name: release_notes            # optional: defaults to the file name without .md
    title: Release notes
    description: Drafts release notes from a list of changes.
    parameters:
      - name: changes
        type: string               # string | integer | enum | list[string]
        required: true
        description: The merged changes, one per line.
        max_length: 6000
        example: "- Add key rotation"
      - name: tone
        type: enum
        choices: [formal, friendly]
    ---
    Write release notes for these changes:

    {{changes}}

    Tone: {{tone}}

Each file becomes an MCP prompt with the same validation and rendering as the built-ins.
A malformed file stops start-up with a :class:`~ctxfy.core.errors.ConfigurationError` that
names the file and the problem; so do a declared parameter the template never uses (its
value would be dropped) and an ``example`` that breaks its own declaration.
"""

import re
from pathlib import Path
from typing import Any

import yaml

from ctxfy.core.errors import ConfigurationError
from ctxfy.core.params import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_LENGTH,
    ParamSpec,
    ParamType,
    validate_arguments,
)
from ctxfy.core.prompt import PromptSpec, render_prompt

_PROMPT_KEYS = {"name", "title", "description", "parameters"}
_PARAM_KEYS = {
    "name",
    "type",
    "required",
    "description",
    "example",
    "max_length",
    "max_items",
    "pattern",
    "choices",
}
_FRONT_MATTER_RE = re.compile(r"^---\n(.*?)^---[ \t]*(?:\n|\Z)(.*)\Z", re.DOTALL | re.MULTILINE)
#: Prompt files larger than this are refused: a prompt template is not a document store.
MAX_FILE_BYTES = 256 * 1024


def load_prompt_dir(directory: Path) -> tuple[PromptSpec, ...]:
    """Load every ``*.md`` file of ``directory`` (not recursive), sorted by file name.

    Args:
        directory: The prompts directory.

    Returns:
        One prompt per file.

    Raises:
        ConfigurationError: A file is malformed; the message names the file and the problem.
    """
    if not directory.is_dir():
        raise ConfigurationError(f"CTXFY_PROMPTS_DIR {directory} is not a directory")
    return tuple(load_prompt_file(path) for path in sorted(directory.glob("*.md")))


def load_prompt_file(path: Path) -> PromptSpec:
    """Load one prompt file.

    Raises:
        ConfigurationError: The file is malformed; the message names it and the problem.
    """
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigurationError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}: not valid UTF-8") from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return parse_prompt_text(text, source=str(path), default_name=path.stem)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None


def parse_prompt_text(text: str, *, source: str, default_name: str) -> PromptSpec:
    """Parse the text of a prompt file.

    Args:
        text: The file's content.
        source: Where it came from (shown in errors and in the prompt's tags).
        default_name: The prompt name when the front matter gives none.

    Raises:
        ConfigurationError: The text is malformed.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.startswith("---\n"):
        raise ConfigurationError("must start with a '---' line opening the front matter")
    match = _FRONT_MATTER_RE.match(text)
    if match is None:
        raise ConfigurationError("front matter is not closed by a '---' line")
    head, body = match.group(1), match.group(2)
    try:
        meta = yaml.safe_load(head) if head.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise ConfigurationError("front matter must be a mapping of keys to values")
    unknown = sorted(set(map(str, meta)) - _PROMPT_KEYS)
    if unknown:
        raise ConfigurationError(
            f"unknown front matter key {unknown[0]!r} (allowed: {', '.join(sorted(_PROMPT_KEYS))})"
        )
    if not body.strip():
        raise ConfigurationError("the template after the front matter is empty")
    raw_params = meta.get("parameters") or []
    if not isinstance(raw_params, list):
        raise ConfigurationError("'parameters' must be a list")
    params = tuple(_param(i, raw) for i, raw in enumerate(raw_params))
    try:
        spec = PromptSpec(
            name=_text(meta, "name", default_name),
            title=_text(meta, "title", ""),
            description=_text(meta, "description", ""),
            params=params,
            template=body.strip("\n") + "\n",
            source=source,
        )
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    _refuse_unused(spec)
    return spec


class _EmptyBlocks(dict[str, str]):
    """Every trusted ``{{> block}}`` as empty text (a mapping that is never empty)."""

    def __missing__(self, key: str) -> str:
        return ""

    def __bool__(self) -> bool:
        return True


def _refuse_unused(spec: PromptSpec) -> None:
    """Refuse a parameter whose value the template never shows: it would be dropped silently."""
    # Rendered with every parameter present (and any trusted block empty): each used
    # parameter's value appears in its own delimited block.
    rendered = render_prompt(spec, {p.name: "x" for p in spec.params}, _EmptyBlocks())
    for param in spec.params:
        if f'<user_input name="{param.name}">' not in rendered:
            raise ConfigurationError(
                f"parameter {param.name!r} is declared but the template never uses "
                f"{{{{{param.name}}}}}: use it or remove the declaration"
            )


def _text(meta: dict[Any, Any], key: str, default: str) -> str:
    value = meta.get(key, default)
    if not isinstance(value, str):
        raise ConfigurationError(f"{key!r} must be a string")
    return value


def _param(index: int, raw: object) -> ParamSpec:
    where = f"parameters[{index}]"
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where} must be a mapping with at least a 'name'")
    unknown = sorted(set(map(str, raw)) - _PARAM_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_PARAM_KEYS))})"
        )
    name = raw.get("name")
    if not isinstance(name, str):
        raise ConfigurationError(f"{where}: 'name' is required and must be a string")
    where = f"parameter {name!r}"
    try:
        kind = ParamType(raw.get("type", "string"))
    except ValueError:
        allowed = ", ".join(t.value for t in ParamType)
        raise ConfigurationError(f"{where}: 'type' must be one of {allowed}") from None
    required = raw.get("required", False)
    max_length = raw.get("max_length", DEFAULT_MAX_LENGTH)
    max_items = raw.get("max_items", DEFAULT_MAX_ITEMS)
    choices = raw.get("choices", [])
    example = raw.get("example")
    checks = (
        (isinstance(required, bool), "'required' must be true or false"),
        (type(max_length) is int, "'max_length' must be a whole number"),
        (type(max_items) is int, "'max_items' must be a whole number"),
        (isinstance(choices, list), "'choices' must be a list"),
        (example is None or isinstance(example, str | int), "'example' must be text"),
    )
    for ok, problem in checks:
        if not ok:
            raise ConfigurationError(f"{where}: {problem}")
    try:
        spec = ParamSpec(
            name=name,
            type=kind,
            required=required,
            description=str(raw.get("description", "")),
            example=None if example is None else str(example),
            max_length=max_length,
            max_items=max_items,
            pattern=raw.get("pattern"),
            choices=tuple(str(c) for c in choices),
        )
    except (ValueError, TypeError) as exc:
        message = str(exc)  # the core's messages may already name the parameter
        named = message if message.startswith(where) else f"{where}: {message}"
        raise ConfigurationError(named) from None
    if spec.example is not None:
        # The example is published in descriptions and schemas: it must be a valid value.
        errors = validate_arguments((spec,), {spec.name: spec.example}).errors
        if errors:
            raise ConfigurationError(
                f"{where}: 'example' {spec.example!r} breaks the declaration: "
                + "; ".join(e.message for e in errors)
            )
    return spec
