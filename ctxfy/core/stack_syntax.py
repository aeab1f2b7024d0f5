"""The line grammar of context stacks, shared by the value objects and the parser.

Keeping it in one place means the validators of :mod:`ctxfy.core.stack` (what a valid stack
is) and the parser of :mod:`ctxfy.core.markdown` (what a line means) cannot drift apart.
"""

from __future__ import annotations

import re

_HEADING_LINE = re.compile(r"(#{1,6})(?:\s+(.*))?")
_BULLET_LINE = re.compile(r"[-*+](?:\s+(.*))?")
_BOLD_FIELD = re.compile(r"\*\*([^:]+?):\*\*(.*)|\*\*([^:*]+?)\*\*:(.*)")
_LEADING_JUNK = re.compile(r"^[^A-Za-z0-9]+")
_TITLE_KEY = re.compile(r"context stack(?:\s*:|$)")
_LAYER_KEY = re.compile(r"(system|domain|task|interaction|response)(?: context)? layer")


def heading_key(text: str) -> str:
    """Reduce a heading to its words, so emoji, mojibake and Markdown marks do not matter.

    Leading characters up to the first ASCII letter or digit go, as do trailing ``*``, ``_``,
    ``:``, ``#`` and whitespace; the rest is case-folded with runs of whitespace collapsed.

    Args:
        text: A heading as written, e.g. ``"## 🎯 System Context Layer"``.

    Returns:
        Its comparison key, e.g. ``"system context layer"``.
    """
    core = trim_marks(_LEADING_JUNK.sub("", text), "*_:#")
    return " ".join(core.casefold().split())


def trim_marks(text: str, marks: str) -> str:
    """Strip whitespace and the given mark characters from both ends, in linear time.

    Unlike an anchored regex, this stays linear on long runs of marks (no ReDoS).
    """
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or text[start] in marks):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in marks):
        end -= 1
    return text[start:end]


def structural_role(text: str) -> str | None:
    """Say whether a heading opens the title, the metadata block or a layer.

    Args:
        text: A heading as written.

    Returns:
        ``"title"``, ``"metadata"``, a :class:`LayerKind` value, or ``None`` for anything else.
    """
    key = heading_key(text)
    if _TITLE_KEY.match(key):
        return "title"
    if key == "metadata":
        return key
    layer = _LAYER_KEY.fullmatch(key)
    return layer.group(1) if layer else None


def match_heading_line(line: str) -> str | None:
    """Return the text of a ``#`` heading line (``""`` when bare), or ``None``."""
    match = _HEADING_LINE.fullmatch(line)
    return None if match is None else (match.group(2) or "").strip()


def match_bullet_line(line: str) -> str | None:
    """Return the stripped content of a ``-``, ``*`` or ``+`` bullet line, or ``None``."""
    match = _BULLET_LINE.fullmatch(line)
    return None if match is None else (match.group(1) or "").strip()


def match_bold_field(line: str) -> tuple[str, str] | None:
    """Split a ``**Key:** value`` (or ``**Key**: value``) line into stripped key and value.

    Returns:
        ``(key, value)``, or ``None`` when the line is no bold field or its key is blank.
    """
    match = _BOLD_FIELD.fullmatch(line)
    if match is None:
        return None
    key, value = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    return (key.strip(), value.strip()) if key.strip() else None


def is_block_syntax(line: str) -> bool:
    """Tell whether a line would be read as a heading, a bullet or a bold field."""
    return (
        match_heading_line(line) is not None
        or match_bullet_line(line) is not None
        or match_bold_field(line) is not None
    )
