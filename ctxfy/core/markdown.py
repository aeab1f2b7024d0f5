r"""Render a :class:`~ctxfy.core.stack.ContextStack` as Markdown, and parse one back.

:func:`render_context_stack` writes real Markdown::

    # CONTEXT STACK: <title>
    ## Metadata
    **Author:** Qwen Code
    ## 🎯 System Context Layer
    *AI Role & Boundaries*
    ### Behavioral Constraints
    **Tone:** Technical and collaborative

(with a blank line between blocks). :func:`parse_context_stack` reads that, and also the plain
format the seed documents use, where headings carry no ``#`` and fields are ``Key: value``.

Both dialects match headings by their words (:func:`~ctxfy.core.stack.heading_key`), never by
their emoji, so a copy whose emoji were garbled by a wrong decoding parses the same. The text
may use ``\r\n``, start with a BOM, sit in a ````` ```markdown ````` fence after a chatty
preamble (text before the title is ignored), and hold extra blank lines.

* **Markdown dialect** (some ``#`` heading names the title, ``Metadata`` or a layer): every
  ``#`` heading inside a layer opens a section, known or not. Fields are ``**Key:** value``
  or ``**Key**: value`` lines; in the metadata block ``Key: value`` lines are fields too.
* **Plain dialect** (otherwise): a line whose words name the title, ``Metadata``, a layer or a
  known section is a heading. ``Key: value`` lines are fields in the metadata block and in
  sections the schema expects fields in; elsewhere they are text.

In both, a bullet (``-``, ``*`` or ``+``) belongs to the last field opened in the section, or
to the section while no field is open (free text closes the open field). A bullet that is a
bold field (``- **Tone:** calm``) is a field in the metadata block and in sections the schema
expects plain fields in; elsewhere it becomes the item ``Tone: calm``. The first line under a layer
heading that is no bullet and no field is the layer's subtitle, italics stripped. Anything
else outside a section (say, fields directly under a layer heading) is dropped.
"""

from __future__ import annotations

import re

from ctxfy.core.errors import ContextStackParseError
from ctxfy.core.stack import (
    ContextStack,
    Field,
    Layer,
    LayerKind,
    Section,
)
from ctxfy.core.stack_schema import (
    SectionKind,
    section_spec,
)
from ctxfy.core.stack_syntax import (
    match_bold_field,
    match_bullet_line,
    match_heading_line,
    structural_role,
    trim_marks,
)

_EMOJI = {
    LayerKind.SYSTEM: "🎯",
    LayerKind.DOMAIN: "📚",
    LayerKind.TASK: "🎯",
    LayerKind.INTERACTION: "💬",
    LayerKind.RESPONSE: "📊",
}
_PLAIN_FIELD = re.compile(r"([^:]+?):(?:\s+(.*))?")
_TITLE = re.compile(r"context\s+stack\s*:?(.*)", re.IGNORECASE)
_NOT_A_STACK = (
    "not a context stack: found no 'CONTEXT STACK: <title>' line and no layer heading "
    "such as 'System Context Layer'"
)


def render_context_stack(stack: ContextStack) -> str:
    """Render a stack as Markdown that :func:`parse_context_stack` reads back unchanged.

    Args:
        stack: Any valid stack.

    Returns:
        The Markdown text, ending with a newline.
    """
    lines = [f"# CONTEXT STACK: {stack.title}".rstrip()]
    if stack.metadata:
        lines += ["", "## Metadata"]
        for field in stack.metadata:
            lines += ["", *_field_lines(field)]
    for layer in stack.layers:
        lines += ["", f"## {_EMOJI[layer.kind]} {layer.kind.heading}"]
        if layer.subtitle:
            lines += ["", f"*{layer.subtitle}*"]
        for section in layer.sections:
            lines += ["", f"### {section.heading}"]
            if section.text:
                lines += ["", *section.text.split("\n")]
            if section.items:
                lines += ["", *(f"- {item}" for item in section.items)]
            for field in section.fields:
                lines += ["", *_field_lines(field)]
    return "\n".join(lines) + "\n"


def _field_lines(field: Field) -> list[str]:
    return [f"**{field.key}:** {field.value}".rstrip(), *(f"- {item}" for item in field.items)]


def parse_context_stack(text: str) -> ContextStack:
    """Parse a context stack from rendered Markdown or from the seed's plain format.

    Args:
        text: The document, as received (see the module docstring for what is tolerated).

    Returns:
        The stack; parts it does not recognise are kept as unknown sections or dropped,
        never rejected.

    Raises:
        ContextStackParseError: The text has neither a title line nor a layer heading.
    """
    lines = _clean_lines(text)
    markdown = any(
        (heading := match_heading_line(line)) is not None and structural_role(heading)
        for line in lines
    )
    parser = _Parser(markdown=markdown)
    for line in lines:
        parser.feed(line)
    return parser.build()


def _clean_lines(text: str) -> list[str]:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.strip() for line in text.split("\n")]
    start = next((i for i, line in enumerate(lines) if _is_structural(line)), len(lines))
    if any(line.startswith("```") for line in lines[:start]):
        # An LLM fenced the document: its closing fence is the last bare one.
        closing = [i for i in range(start, len(lines)) if lines[i] == "```"]
        if closing:
            lines[closing[-1]] = ""
    return lines


def _is_structural(line: str) -> bool:
    heading = match_heading_line(line)
    return structural_role(line if heading is None else heading) is not None


class _Block:
    """The body of a section, or of the metadata block, filled line by line."""

    def __init__(self, heading: str, kind: SectionKind | None, *, plain_fields: bool) -> None:
        self.heading = heading
        self.kind = kind
        self.plain_fields = plain_fields
        self.text: list[str] = []
        self.items: list[str] = []
        self.fields: list[tuple[str, str, list[str]]] = []
        self.open: list[str] | None = None  # the items of the field bullets attach to
        self.gap = False

    def add(self, line: str) -> None:
        if not line:
            self.gap = True
            return
        content = match_bullet_line(line)
        if content is not None:
            self._bullet(content)
            return
        field = match_bold_field(line) or (self.plain_fields and _match_plain_field(line))
        if field:
            self._field(*field)
            return
        self.open = None
        if self.text and self.gap:
            self.text.append("")
        self.text.append(line)
        self.gap = False

    def _bullet(self, content: str) -> None:
        if not content:
            return
        bold = match_bold_field(content)
        if bold and self.kind is SectionKind.FIELDS:
            self._field(*bold)
            return
        if bold:
            content = f"{bold[0].strip('*').strip()}: {bold[1]}".strip()
        (self.items if self.open is None else self.open).append(content)

    def _field(self, key: str, value: str) -> None:
        self.open = []
        self.fields.append((key, value, self.open))

    def built_fields(self) -> tuple[Field, ...]:
        return tuple(Field(key, value, tuple(items)) for key, value, items in self.fields)

    def section(self) -> Section:
        text = "\n".join(self.text)
        return Section(self.heading, text, tuple(self.items), self.built_fields())


def _match_plain_field(line: str) -> tuple[str, str] | None:
    match = _PLAIN_FIELD.fullmatch(line)
    if match is None or not match.group(1).strip():
        return None
    return match.group(1).strip(), (match.group(2) or "").strip()


class _LayerDraft:
    def __init__(self, kind: LayerKind) -> None:
        self.kind = kind
        self.subtitle = ""
        self.subtitle_open = True
        self.sections: list[_Block] = []


class _Parser:
    """A line-by-line state machine: where we are decides what a line means."""

    def __init__(self, *, markdown: bool) -> None:
        self.markdown = markdown
        self.title: str | None = None
        self.metadata = _Block("Metadata", SectionKind.FIELDS, plain_fields=True)
        self.layers: dict[LayerKind, _LayerDraft] = {}
        self.layer: _LayerDraft | None = None
        self.block: _Block | None = None

    def feed(self, line: str) -> None:
        if line and self._heading(line):
            return
        if self.block is not None:
            self.block.add(line)
        elif line and self.layer is not None and self.layer.subtitle_open:
            self.layer.subtitle_open = False
            if match_bullet_line(line) is None and not match_bold_field(line):
                self.layer.subtitle = trim_marks(line, "*_")

    def _heading(self, line: str) -> bool:
        hashed = match_heading_line(line)
        if hashed == "":
            return True  # a bare '#' says nothing
        text = line if hashed is None else hashed
        role = structural_role(text)
        spec = section_spec(text)
        if hashed is None and (self.markdown or (role is None and spec is None)):
            return False
        if role == "title":
            self._set_title(text)
            self.layer = self.block = None
        elif role == "metadata":
            self.layer, self.block = None, self.metadata
        elif role is not None:
            kind = LayerKind(role)
            self.layer, self.block = self.layers.setdefault(kind, _LayerDraft(kind)), None
        elif self.layer is None:
            self.block = None
        else:
            section_kind = spec.kind if spec else None
            heading = text if hashed is not None or spec is None else spec.heading
            plain = not self.markdown and section_kind in (
                SectionKind.FIELDS,
                SectionKind.ITEM_FIELDS,
            )
            self.block = _Block(heading, section_kind, plain_fields=plain)
            self.layer.sections.append(self.block)
            self.layer.subtitle_open = False
        return True

    def _set_title(self, text: str) -> None:
        if self.title is None:
            match = _TITLE.search(text)
            self.title = match.group(1).strip() if match else ""

    def build(self) -> ContextStack:
        if self.title is None and not self.layers:
            raise ContextStackParseError(_NOT_A_STACK)
        layers = tuple(
            Layer(draft.kind, draft.subtitle, tuple(block.section() for block in draft.sections))
            for draft in self.layers.values()
        )
        return ContextStack(self.title or "", self.metadata.built_fields(), layers)
