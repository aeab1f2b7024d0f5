"""Request-level limits: how many arguments, and how many characters, one request may carry.

Per-field limits (``max_length``, ``max_items``) live on each
:class:`~ctxfy.core.params.ParamSpec`. The limits here bound what a request can cost whatever
its declarations say, which matters most for components whose declarations are derived
(plain FastMCP prompts and tools). :func:`~ctxfy.core.params.validate_arguments` checks them
first, and RequestValidationMiddleware applies them to every prompt and tool.
"""

import json
from collections.abc import Mapping

import attrs

from ctxfy.core.charpolicy import FieldError

#: Default request-level limits. 256 Ki characters leaves room for the largest built-in field
#: (``lint_context_stack``'s 200,000-character ``markdown``); 32 arguments is four times the
#: widest built-in prompt.
DEFAULT_MAX_REQUEST_CHARS = 262_144
DEFAULT_MAX_ARGUMENTS = 32


@attrs.frozen
class ValidationLimits:
    """Limits on a request as a whole, checked before any field is examined.

    Attributes:
        max_arguments: The most arguments one request may carry, declared or not.
        max_request_chars: The most characters all argument names and values may add up to
            (strings count their characters; other JSON values the characters of their JSON).

    Example:
        >>> ValidationLimits(max_request_chars=65_536).max_arguments
        32
    """

    max_arguments: int = attrs.field(
        default=DEFAULT_MAX_ARGUMENTS, validator=attrs.validators.ge(1)
    )
    max_request_chars: int = attrs.field(
        default=DEFAULT_MAX_REQUEST_CHARS, validator=attrs.validators.ge(1)
    )


#: The limits used when none are given.
DEFAULT_LIMITS = ValidationLimits()


def request_size(arguments: Mapping[str, object]) -> int:
    """Return the size of ``arguments`` in characters, as :class:`ValidationLimits` counts it.

    Args:
        arguments: The raw arguments.

    Returns:
        The characters of every name, plus those of every string value (or of the JSON text of
        any other value; strings inside lists count their characters).
    """
    total = 0
    for name, value in arguments.items():
        # Strings, by far the most common value, skip the call.
        total += len(name) + (len(value) if isinstance(value, str) else _value_size(value))
    return total


def _value_size(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return sum(len(item) for item in value)
    return len(json.dumps(value, ensure_ascii=False, default=str))


def check_request_limits(
    arguments: Mapping[str, object], limits: ValidationLimits = DEFAULT_LIMITS
) -> tuple[FieldError, ...]:
    """Check ``arguments`` against the request-level ``limits``.

    Args:
        arguments: The raw arguments.
        limits: The limits to apply.

    Returns:
        The errors found (field ``"*"``, rules ``max_arguments`` and ``max_request_size``),
        empty when the request is within its limits.

    Example:
        >>> [e.rule for e in check_request_limits({"a": "x" * 10}, ValidationLimits(1, 5))]
        ['max_request_size']
    """
    errors: list[FieldError] = []
    if len(arguments) > limits.max_arguments:
        errors.append(
            FieldError(
                "*",
                "max_arguments",
                f"the request has {len(arguments)} arguments; the limit is {limits.max_arguments}",
            )
        )
    size = request_size(arguments)
    if size > limits.max_request_chars:
        errors.append(
            FieldError(
                "*",
                "max_request_size",
                f"the arguments add up to {size} characters; the limit is "
                f"{limits.max_request_chars}",
            )
        )
    return tuple(errors)
