"""Typed parameter declarations and the pure argument validator.

One declaration per parameter (:class:`ParamSpec`) is the single source for the MCP argument
descriptions, the JSON Schema resources and validation. MCP carries prompt arguments as
strings with no schema, so :func:`validate_arguments` is what gives them types and limits.
"""

import enum
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ctxfy.core.charpolicy import FieldError, clean_text, clean_value, is_clean_ascii
from ctxfy.core.request_limits import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_ARGUMENTS,
    DEFAULT_MAX_REQUEST_CHARS,
    ValidationLimits,
    check_request_limits,
    request_size,
)

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_INTEGER_RE = re.compile(r"\s*[-+]?\d+\s*")
_SMALL_INTEGER_RE = re.compile(r"\s*[-+]?0*\d{1,18}\s*")

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_ARGUMENTS",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_MAX_REQUEST_CHARS",
    "MAX_INTEGER",
    "FieldError",
    "ParamSpec",
    "ParamType",
    "ValidationLimits",
    "ValidationResult",
    "arguments_schema",
    "check_request_limits",
    "clean_text",
    "is_param_name",
    "request_size",
    "validate_arguments",
]

#: Default per-field limits, chosen so that a real business requirement fits with room to spare.
DEFAULT_MAX_LENGTH = 8_000
DEFAULT_MAX_ITEMS = 50
#: The largest integer a string argument may spell (18 digits: it fits any 64-bit integer).
MAX_INTEGER = 10**18 - 1


class ParamType(enum.Enum):
    """The types a parameter can declare."""

    STRING = "string"
    INTEGER = "integer"
    ENUM = "enum"
    STRING_LIST = "list[string]"


def is_param_name(name: str) -> bool:
    """Return whether ``name`` can name a declared parameter (a lower-case identifier).

    Example:
        >>> is_param_name("user_name"), is_param_name("userName")
        (True, False)
    """
    return _NAME_RE.match(name) is not None


def _check_name(_instance: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{attribute.name} {value!r} must be a lower-case identifier "
            "(letters, digits, underscore; at most 64 characters)"
        )


def _check_pattern(
    _instance: object, _attribute: "attrs.Attribute[str | None]", value: str | None
) -> None:
    if value is None:
        return
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"pattern {value!r} is not a valid regular expression: {exc}") from None
    try:
        # The form JSON Schema publishes (see ParamSpec.published_pattern) must compile too.
        re.compile(f"^(?:{value})$")
    except re.error as exc:
        raise ValueError(
            f"pattern {value!r} cannot be anchored as ^(?:...)$ ({exc}); write a global "
            "inline flag such as (?i) as a scoped group instead, e.g. (?i:abc)"
        ) from None


@attrs.frozen
class ParamSpec:
    """The declaration of one prompt or tool parameter.

    Attributes:
        name: Lower-case identifier used as the argument name.
        type: The value's type; MCP sends strings, which are converted.
        required: Whether the argument must be present and non-empty (only present when
            :attr:`accept_empty` is set).
        description: What the argument means, shown to users and in schemas.
        example: A realistic example value (used in docs and schemas).
        max_length: Maximum length in characters of a string (of each item for lists).
        max_items: Maximum number of items of a ``list[string]``.
        pattern: Optional regular expression a string must match in full; the JSON Schema
            publishes it anchored, ``^(?:pattern)$``, which says the same.
        choices: Allowed values of an ``enum``.
        pattern_anywhere: Whether ``pattern`` may match anywhere in the string instead, as a
            JSON Schema ``pattern`` does; set for declarations derived from a plain
            component's JSON Schema, so ctxfy checks what the component itself checks.
        accept_empty: Whether an empty or blank string, or an empty list, is a value rather
            than a missing argument, so that ``required`` only means present. Set for
            declarations derived from a plain component, which accepts such values.
    """

    name: str = attrs.field(validator=_check_name)
    type: ParamType = ParamType.STRING
    required: bool = False
    description: str = ""
    example: str | None = None
    max_length: int = attrs.field(default=DEFAULT_MAX_LENGTH, validator=attrs.validators.ge(1))
    max_items: int = attrs.field(default=DEFAULT_MAX_ITEMS, validator=attrs.validators.ge(1))
    pattern: str | None = attrs.field(default=None, validator=_check_pattern)
    choices: tuple[str, ...] = ()
    pattern_anywhere: bool = False
    accept_empty: bool = False

    def __attrs_post_init__(self) -> None:
        if self.type is ParamType.ENUM and not self.choices:
            raise ValueError(f"parameter {self.name!r} is an enum but declares no choices")
        if self.type is not ParamType.ENUM and self.choices:
            raise ValueError(f"parameter {self.name!r} declares choices but is not an enum")

    @property
    def published_pattern(self) -> str | None:
        """The pattern as JSON Schema states it (anchored unless :attr:`pattern_anywhere`)."""
        if self.pattern is None or self.pattern_anywhere:
            return self.pattern
        return f"^(?:{self.pattern})$"

    def json_schema(self) -> dict[str, Any]:
        r"""Return the JSON Schema (draft 2020-12) of this parameter's value.

        A required string gets ``minLength: 1`` and, unless it has a pattern of its own,
        ``pattern: "\S"`` (a value of only whitespace counts as missing); a required list
        gets ``minItems: 1``; neither applies with :attr:`accept_empty`. A whole-string
        pattern is published anchored.
        """
        schema: dict[str, Any]
        if self.type is ParamType.INTEGER:
            schema = {"type": "integer"}
        elif self.type is ParamType.ENUM:
            schema = {"type": "string", "enum": list(self.choices)}
        elif self.type is ParamType.STRING_LIST:
            schema = {
                "type": "array",
                "items": {"type": "string", "maxLength": self.max_length},
                "maxItems": self.max_items,
            }
            if self.required and not self.accept_empty:
                schema["minItems"] = 1
        else:
            schema = {"type": "string", "maxLength": self.max_length}
            if self.required and not self.accept_empty:
                schema["minLength"] = 1
                schema["pattern"] = r"\S"
            if self.pattern is not None:
                schema["pattern"] = self.published_pattern
        if self.description:
            schema["description"] = self.description
        if self.example is not None:
            schema["examples"] = [self.example]
        return schema


def arguments_schema(params: tuple[ParamSpec, ...]) -> dict[str, Any]:
    """Return the JSON Schema of an arguments object made of ``params``.

    Args:
        params: The declared parameters.

    Returns:
        An object schema with ``properties``, ``required`` and no additional properties.
    """
    return {
        "type": "object",
        "properties": {p.name: p.json_schema() for p in params},
        "required": [p.name for p in params if p.required],
        "additionalProperties": False,
    }


@attrs.frozen
class ValidationResult:
    """The outcome of validating a set of arguments.

    Attributes:
        values: The converted, normalised values of the arguments that passed (absent optional
            arguments are left out).
        errors: Every problem found, in parameter order.
    """

    values: Mapping[str, object]
    errors: tuple[FieldError, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether no error was found."""
        return not self.errors


def _convert(spec: ParamSpec, raw: object) -> tuple[object, list[FieldError]]:
    name = spec.name
    if spec.type is ParamType.INTEGER:
        if isinstance(raw, bool):
            return None, [FieldError(name, "type", f"{name} must be an integer")]
        if isinstance(raw, int):
            return raw, []
        if isinstance(raw, str) and _INTEGER_RE.fullmatch(raw):
            if _SMALL_INTEGER_RE.fullmatch(raw):
                return int(raw), []
            message = f"{name} is out of range; the limit is {MAX_INTEGER:,} either way"
            return None, [FieldError(name, "range", message)]
        return None, [FieldError(name, "type", f"{name} must be an integer")]
    if spec.type is ParamType.STRING_LIST:
        return _convert_list(spec, raw)
    if not isinstance(raw, str):
        return None, [FieldError(name, "type", f"{name} must be a string")]
    text, errors = clean_text(name, raw)
    if errors:
        return None, errors
    if not text.strip() and not spec.accept_empty:
        return "", []  # only invisible characters: absent, see validate_arguments
    return _check_string(spec, name, text)


def _check_string(spec: ParamSpec, field: str, text: str) -> tuple[object, list[FieldError]]:
    if len(text) <= spec.max_length and spec.pattern is None and spec.type is not ParamType.ENUM:
        return text, []  # the common case: nothing below can fail
    errors: list[FieldError] = []
    if len(text) > spec.max_length:
        message = f"{field} is {len(text)} characters long; the limit is {spec.max_length}"
        errors.append(FieldError(field, "max_length", message))
    if spec.type is ParamType.ENUM and text not in spec.choices:
        allowed = ", ".join(spec.choices)
        errors.append(FieldError(field, "enum", f"{field} must be one of: {allowed}"))
    if spec.pattern is not None:
        match = re.search if spec.pattern_anywhere else re.fullmatch
        if not match(spec.pattern, text):
            message = f"{field} must match the pattern {spec.published_pattern}"
            errors.append(FieldError(field, "pattern", message))
    return (None if errors else text), errors


def _convert_list(spec: ParamSpec, raw: object) -> tuple[object, list[FieldError]]:
    name = spec.name
    items: object = raw
    if isinstance(raw, str):
        try:
            items = json.loads(raw)
        except ValueError:
            return None, [FieldError(name, "type", f"{name} must be a JSON array of strings")]
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return None, [FieldError(name, "type", f"{name} must be a list of strings")]
    if len(items) > spec.max_items:
        message = f"{name} has {len(items)} items; the limit is {spec.max_items}"
        return None, [FieldError(name, "max_items", message)]
    out: list[str] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        field = f"{name}[{index}]"
        text, item_errors = clean_text(field, item)
        if not item_errors:
            value, item_errors = _check_string(spec, field, text)
            if value is not None:
                out.append(text)
        errors.extend(item_errors)
    return (None if errors else tuple(out)), errors


def _is_empty(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []


def validate_arguments(
    params: tuple[ParamSpec, ...],
    arguments: Mapping[str, object] | None,
    limits: ValidationLimits = DEFAULT_LIMITS,
    *,
    opaque: frozenset[str] = frozenset(),
) -> ValidationResult:
    """Validate and convert ``arguments`` against their declarations.

    The request-level ``limits`` are checked first; a request over them is refused with
    only those errors, before any field is examined. Otherwise every problem is reported,
    not just the first: missing required arguments, unknown arguments, type, length, enum
    and pattern violations, and the character policy (:func:`clean_text`). Empty strings,
    and strings left empty once invisible characters are stripped, count as absent, unless
    the declaration sets :attr:`ParamSpec.accept_empty`.

    Args:
        params: The declared parameters.
        arguments: The raw arguments as received (MCP sends strings).
        limits: The request-level limits (:data:`DEFAULT_LIMITS` when not given).
        opaque: Names of further known arguments whose type the component checks itself
            (a plain FastMCP tool's booleans, numbers, objects and unions): only the
            character policy applies, to every string inside them (see
            :func:`~ctxfy.core.charpolicy.clean_value`).

    Returns:
        The converted values and every error found.
    """
    arguments = arguments or {}
    request_errors = check_request_limits(arguments, limits)
    if request_errors:
        return ValidationResult(values={}, errors=request_errors)
    errors: list[FieldError] = []
    values: dict[str, object] = {}
    for spec in params:
        raw = arguments.get(spec.name)
        if (
            type(raw) is str
            and spec.type is ParamType.STRING
            and spec.pattern is None
            and len(raw) <= spec.max_length
            and raw.strip()
            and is_clean_ascii(raw)
        ):
            values[spec.name] = raw  # what the general path gives, found several times faster
            continue
        value: object = ""
        if raw is not None and (spec.accept_empty or not _is_empty(raw)):
            value, field_errors = _convert(spec, raw)
            if field_errors:
                errors.extend(field_errors)
                continue
        if raw is None or (not spec.accept_empty and isinstance(value, str) and not value.strip()):
            # Empty, or only invisible characters stripped by the character policy: absent.
            if spec.required:
                errors.append(FieldError(spec.name, "required", f"{spec.name} is required"))
        else:
            values[spec.name] = value
    for name, raw in arguments.items():
        if name in opaque:
            value, field_errors = clean_value(name, raw)
            errors.extend(field_errors)
            if not field_errors:
                values[name] = value
    for name in sorted(set(arguments) - {p.name for p in params} - opaque):
        shown = name if len(name) <= 64 else name[:64] + "…"
        errors.append(
            FieldError(shown, "unknown", f"{shown!r} is not an argument of this prompt or tool")
        )
    return ValidationResult(values=values, errors=tuple(errors))
