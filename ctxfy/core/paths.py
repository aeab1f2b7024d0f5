"""Path confinement for path-like arguments: pure checks on the text of the path.

ctxfy's own prompts and tools take no path argument. A tool of yours that does (a file to
read, a directory to list) must keep the caller inside one directory: this module checks
the *text* of the path, and :func:`ctxfy.adapters.paths.resolve_confined` adds the check
that only the file system can make (symbolic links). Paths use ``/`` as separator.

The rules, each with a stable name used as the error's ``rule``:

* ``path_empty`` — nothing left once ``.`` and empty segments are removed;
* ``path_absolute`` — starts with ``/``, a drive letter (``C:``) or ``~``;
* ``path_backslash`` — contains a backslash, a separator on Windows and an escape elsewhere;
* ``path_traversal`` — has a ``..`` segment;
* ``path_too_long`` — over 1,024 characters, or a segment over 255;
* and the character policy (``control_character`` for NUL and other controls,
  ``bidi_control``, ``tag_character``), as for every string argument.
"""

import re

from ctxfy.core.charpolicy import FieldError, clean_text
from ctxfy.core.errors import InvalidArgumentsError

__all__ = [
    "MAX_PATH_CHARS",
    "MAX_SEGMENT_CHARS",
    "UnsafePathError",
    "confine_path",
    "safe_relative_parts",
]

#: The longest path accepted, in characters.
MAX_PATH_CHARS = 1_024
#: The longest single segment accepted (the usual file-system limit).
MAX_SEGMENT_CHARS = 255

_DRIVE_RE = re.compile(r"^[A-Za-z]:")


class UnsafePathError(InvalidArgumentsError):
    """A path argument is malformed or would lead outside its root directory.

    It is an :class:`~ctxfy.core.errors.InvalidArgumentsError`, so its ``errors`` have the
    same ``{field, rule, message}`` shape as every other argument error. Messages never
    repeat the path.
    """


def _refuse(field: str, rule: str, message: str) -> UnsafePathError:
    return UnsafePathError((FieldError(field, rule, f"{field} {message}"),))


def safe_relative_parts(candidate: str, *, field: str = "path") -> tuple[str, ...]:
    """Check a relative path and return its segments.

    Args:
        candidate: The path as the caller sent it, for example ``"notes/2026/q1.md"``.
        field: The argument name, used in error messages.

    Returns:
        The segments, NFC-normalised, without ``.`` or empty segments.

    Raises:
        UnsafePathError: The path breaks one of the rules in the module docstring.

    Example:
        >>> safe_relative_parts("notes//./q1.md")
        ('notes', 'q1.md')
    """
    text, errors = clean_text(field, candidate)
    if errors:
        raise UnsafePathError(tuple(errors))
    if len(text) > MAX_PATH_CHARS:
        raise _refuse(field, "path_too_long", f"is longer than {MAX_PATH_CHARS} characters")
    if text.startswith(("/", "~")) or _DRIVE_RE.match(text):
        raise _refuse(field, "path_absolute", "must be a path relative to its directory")
    if "\\" in text:
        raise _refuse(field, "path_backslash", "must use '/' as separator, not '\\'")
    parts = tuple(part for part in text.split("/") if part not in {"", "."})
    if ".." in parts:
        raise _refuse(field, "path_traversal", "must not contain '..'")
    if not parts:
        raise _refuse(field, "path_empty", "names no file or directory")
    if any(len(part) > MAX_SEGMENT_CHARS for part in parts):
        raise _refuse(
            field, "path_too_long", f"has a segment longer than {MAX_SEGMENT_CHARS} characters"
        )
    return parts


def confine_path(root: str, candidate: str, *, field: str = "path") -> str:
    """Join a caller's relative path to a trusted root, refusing anything that leaves it.

    This is a check on text only: it cannot see symbolic links. Use
    :func:`ctxfy.adapters.paths.resolve_confined` before touching the file system.

    Args:
        root: The trusted, absolute POSIX directory (``/srv/notes``).
        candidate: The untrusted relative path.
        field: The argument name, used in error messages.

    Returns:
        ``root`` and the checked segments joined with ``/``.

    Raises:
        UnsafePathError: The candidate breaks a rule (see :func:`safe_relative_parts`).
        ValueError: ``root`` is not absolute (a programming error, not a client error).

    Example:
        >>> confine_path("/srv/notes", "2026/./q1.md")
        '/srv/notes/2026/q1.md'
        >>> confine_path("/srv/notes", "../etc/passwd")
        Traceback (most recent call last):
        ...
        ctxfy.core.paths.UnsafePathError: invalid arguments: path: path must not contain '..'
    """
    if not root.startswith("/"):
        raise ValueError(f"root must be an absolute POSIX path, not {root!r}")
    parts = safe_relative_parts(candidate, field=field)
    return "/".join((root.rstrip("/"), *parts))
