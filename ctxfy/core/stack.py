"""Context stacks as values: layers, sections and fields, plus the known schema.

A :class:`ContextStack` is a title, metadata fields and up to five layers; a layer holds
sections; a section holds free text, bullet items and ``Key: value`` fields (a field may carry
bullet items of its own). The validators define a *valid* stack, and they are exactly the rules
that make ``parse_context_stack(render_context_stack(stack)) == stack`` hold:

* one-line strings (title, subtitle, heading, key, value, item) hold no line break and no
  leading or trailing whitespace;
* headings, keys and items are non-empty; keys contain no ``:``;
* an item is not itself a bold field (``**Key:** value``);
* a subtitle neither starts nor ends with ``*`` or ``_`` (it is rendered in italics);
* a section heading is not a structural heading (title, ``Metadata`` or a layer heading);
* text lines have no surrounding whitespace, no line is Markdown block syntax (a ``#``
  heading, a ``-``/``*``/``+`` bullet or a bold field), and blank lines only separate
  paragraphs (never two in a row, never first or last);
* no layer kind appears twice.

The line grammar below is shared with :mod:`ctxfy.core.markdown`, so the validators and the
parser cannot drift apart. The module also holds the known schema (:data:`SCHEMA`) and the
blank template (:func:`blank_context_stack`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar

import attrs

# --- line grammar, shared with the Markdown parser ---------------------------------------

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


# --- validators ------------------------------------------------------------------------------

_R = TypeVar("_R")
_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _fail(instance: object, attribute: attrs.Attribute[Any], rule: str, value: object) -> NoReturn:
    raise ValueError(f"{type(instance).__name__}.{attribute.name} {rule} (got {value!r})")


def _line_rule(value: str, *, empty_ok: bool) -> str | None:
    if "\n" in value or "\r" in value or value != value.strip():
        return "must be one line without surrounding whitespace"
    return None if value or empty_ok else "must not be empty"


def _string(*rules: Callable[[str], str | None]) -> _Validator:
    """Build a validator that type-checks a str and applies each rule (rule → message)."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str):
            raise TypeError(f"{type(instance).__name__}.{attribute.name} must be a str")
        for rule in rules:
            if (message := rule(value)) is not None:
                _fail(instance, attribute, message, value)

    return check


def _opt_line(value: str) -> str | None:
    return _line_rule(value, empty_ok=True)


def _line(value: str) -> str | None:
    return _line_rule(value, empty_ok=False)


def _no_colon(value: str) -> str | None:
    return "must not contain ':'" if ":" in value else None


def _not_italic_edge(value: str) -> str | None:
    edges = value[:1] + value[-1:]
    return "must not start or end with '*' or '_'" if {"*", "_"} & set(edges) else None


def _not_structural(value: str) -> str | None:
    wrong = structural_role(value) is not None
    return "must not be a title, metadata or layer heading" if wrong else None


def _text_rule(value: str) -> str | None:
    lines = value.split("\n")
    if value and (not lines[0] or not lines[-1] or "\n\n\n" in value):
        return "must not start, end or break paragraphs with extra blank lines"
    bad = [ln for ln in lines if "\r" in ln or ln != ln.strip() or is_block_syntax(ln)]
    return f"has a line with edge whitespace or Markdown block syntax: {bad[0]!r}" if bad else None


def _items(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple):
        raise TypeError(f"{type(instance).__name__}.{attribute.name} must be a tuple of str")
    check = _string(
        _line, lambda item: "must not be a bold field" if match_bold_field(item) else None
    )
    for item in value:
        check(instance, attribute, item)


def _tuple_of(kind: type) -> _Validator:
    return attrs.validators.deep_iterable(
        attrs.validators.instance_of(kind), attrs.validators.instance_of(tuple)
    )


# --- value objects -----------------------------------------------------------------------------


class LayerKind(enum.Enum):
    """The five layers of a context stack, in their canonical order."""

    SYSTEM = "system"
    DOMAIN = "domain"
    TASK = "task"
    INTERACTION = "interaction"
    RESPONSE = "response"

    @property
    def heading(self) -> str:
        """The layer's heading words, e.g. ``"System Context Layer"``."""
        return f"{self.value.capitalize()} Context Layer"


@attrs.frozen
class Field:
    """A ``Key: value`` line, optionally followed by bullet items.

    Attributes:
        key: Non-empty, one line, no ``:``.
        value: One line, may be empty.
        items: Bullet items under the field, each non-empty and one line.
    """

    key: str = attrs.field(validator=_string(_line, _no_colon))
    value: str = attrs.field(default="", validator=_string(_opt_line))
    items: tuple[str, ...] = attrs.field(default=(), validator=_items)


@attrs.frozen
class Section:
    """A headed part of a layer, e.g. "Role Definition".

    Attributes:
        heading: The heading as written; one line, not a structural heading.
        text: Free text; paragraphs are separated by one blank line.
        items: Bullet items that belong to the section itself.
        fields: ``Key: value`` fields, in order (keys may repeat).
    """

    heading: str = attrs.field(validator=_string(_line, _not_structural))
    text: str = attrs.field(default="", validator=_string(_text_rule))
    items: tuple[str, ...] = attrs.field(default=(), validator=_items)
    fields: tuple[Field, ...] = attrs.field(default=(), validator=_tuple_of(Field))

    def field(self, key: str) -> Field | None:
        """Return the first field whose key matches ``key`` case-insensitively."""
        wanted = key.strip().casefold()
        return next((f for f in self.fields if f.key.casefold() == wanted), None)


@attrs.frozen
class Layer:
    """One of the five layers.

    Attributes:
        kind: Which layer this is.
        subtitle: The line under the layer heading, e.g. "AI Role & Boundaries"; may be empty.
        sections: The layer's sections, in order.
    """

    kind: LayerKind = attrs.field(validator=attrs.validators.instance_of(LayerKind))
    subtitle: str = attrs.field(default="", validator=_string(_opt_line, _not_italic_edge))
    sections: tuple[Section, ...] = attrs.field(default=(), validator=_tuple_of(Section))

    def section(self, heading: str) -> Section | None:
        """Return the first section whose heading has the same words (emoji and case aside)."""
        wanted = heading_key(heading) or heading.casefold()
        return next(
            (
                s
                for s in self.sections
                if (heading_key(s.heading) or s.heading.casefold()) == wanted
            ),
            None,
        )


def _distinct_kinds(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[Layer, ...]
) -> None:
    _tuple_of(Layer)(instance, attribute, value)
    kinds = [layer.kind for layer in value]
    if len(kinds) != len(set(kinds)):
        _fail(instance, attribute, "must not repeat a layer kind", [k.value for k in kinds])


@attrs.frozen
class ContextStack:
    """A whole context stack.

    Attributes:
        title: The text after ``CONTEXT STACK:``; one line, may be empty.
        metadata: Metadata fields (Creation Date, Author, ...), in order.
        layers: The layers present, in document order, each kind at most once.
    """

    title: str = attrs.field(validator=_string(_opt_line))
    metadata: tuple[Field, ...] = attrs.field(default=(), validator=_tuple_of(Field))
    layers: tuple[Layer, ...] = attrs.field(default=(), validator=_distinct_kinds)

    def layer(self, kind: LayerKind) -> Layer | None:
        """Return the layer of the given kind, if present."""
        return next((layer for layer in self.layers if layer.kind is kind), None)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict that :meth:`from_dict` turns back into an equal stack.

        Shape: ``{"title": str, "metadata": [FIELD], "layers": [{"kind": "system",
        "subtitle": str, "sections": [{"heading": str, "text": str, "items": [str],
        "fields": [FIELD]}]}]}`` where FIELD is ``{"key": str, "value": str, "items": [str]}``.
        Lists keep order and repeated keys, so nothing is lost.
        """
        return {
            "title": self.title,
            "metadata": [_field_dict(f) for f in self.metadata],
            "layers": [
                {
                    "kind": layer.kind.value,
                    "subtitle": layer.subtitle,
                    "sections": [
                        {
                            "heading": s.heading,
                            "text": s.text,
                            "items": list(s.items),
                            "fields": [_field_dict(f) for f in s.fields],
                        }
                        for s in layer.sections
                    ],
                }
                for layer in self.layers
            ],
        }

    @classmethod
    def from_dict(cls, data: object) -> ContextStack:
        """Build a stack from the shape :meth:`to_dict` returns.

        Args:
            data: A decoded JSON object.

        Returns:
            The equal stack.

        Raises:
            TypeError: A part has the wrong JSON type; the message names its path.
            ValueError: A key is unknown or missing, or a value breaks an invariant.
        """
        top = _Json(data, "stack", ("title",), ("metadata", "layers"))
        kinds = {kind.value: kind for kind in LayerKind}
        layers: list[Layer] = []
        for i, raw_layer in enumerate(top.array("layers")):
            obj = _Json(raw_layer, f"layers[{i}]", ("kind",), ("subtitle", "sections"))
            if obj.text("kind") not in kinds:
                raise ValueError(f"{obj.path}.kind must be one of {sorted(kinds)}")
            sections = tuple(
                _section_from(raw, f"{obj.path}.sections[{j}]")
                for j, raw in enumerate(obj.array("sections"))
            )
            kind = kinds[obj.text("kind")]
            layers.append(obj.build(Layer, kind, obj.text("subtitle"), sections))
        metadata = tuple(
            _field_from(raw, f"metadata[{i}]") for i, raw in enumerate(top.array("metadata"))
        )
        return top.build(cls, top.text("title"), metadata, tuple(layers))


def _field_dict(field: Field) -> dict[str, object]:
    return {"key": field.key, "value": field.value, "items": list(field.items)}


class _Json:
    """A decoded JSON object being read, with its path for error messages."""

    def __init__(
        self, data: object, path: str, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> None:
        if not isinstance(data, dict):
            raise TypeError(f"{path} must be an object, got {type(data).__name__}")
        missing = [key for key in required if key not in data]
        unknown = sorted(repr(key) for key in data if key not in required + optional)
        problems = [f"missing keys {missing}"] if missing else []
        problems += [f"unknown keys [{', '.join(unknown)}]"] if unknown else []
        if problems:
            raise ValueError(f"{path}: {'; '.join(problems)}")
        self.data: dict[object, object] = data
        self.path = path

    def text(self, key: str) -> str:
        value = self.data.get(key, "")
        if not isinstance(value, str):
            raise TypeError(f"{self.path}.{key} must be a string, got {type(value).__name__}")
        return value

    def array(self, key: str) -> list[object]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise TypeError(f"{self.path}.{key} must be a list, got {type(value).__name__}")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.array(key)
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise TypeError(f"{self.path}.{key}[{i}] must be a string")
        return tuple(str(value) for value in values)

    def build(self, cls: Callable[..., _R], *args: object) -> _R:
        try:
            return cls(*args)
        except ValueError as exc:
            raise ValueError(f"{self.path}: {exc}") from exc


def _field_from(data: object, path: str) -> Field:
    obj = _Json(data, path, ("key",), ("value", "items"))
    return obj.build(Field, obj.text("key"), obj.text("value"), obj.texts("items"))


def _section_from(data: object, path: str) -> Section:
    obj = _Json(data, path, ("heading",), ("text", "items", "fields"))
    fields = tuple(
        _field_from(raw, f"{path}.fields[{i}]") for i, raw in enumerate(obj.array("fields"))
    )
    return obj.build(Section, obj.text("heading"), obj.text("text"), obj.texts("items"), fields)


# --- the known schema and the blank template -----------------------------------------------


class SectionKind(enum.Enum):
    """What a known section is expected to hold."""

    TEXT = "text"
    FIELDS = "fields"
    ITEM_FIELDS = "item_fields"
    ITEMS = "items"


@attrs.frozen
class SectionSpec:
    """A section the schema expects.

    Attributes:
        heading: Its canonical heading, e.g. "Behavioral Constraints".
        kind: Free text, ``Key: value`` fields, fields carrying bullet items, or bullet items.
        field_names: The expected field keys; empty for free keys (terms in a glossary).
        optional: Whether leaving the section out is fine (linted as INFO, not WARNING).
    """

    heading: str
    kind: SectionKind
    field_names: tuple[str, ...] = ()
    optional: bool = False


@attrs.frozen
class LayerSpec:
    """A layer the schema expects.

    Attributes:
        subtitle: The canonical line under the layer heading.
        sections: The sections expected in the layer, in order.
    """

    subtitle: str
    sections: tuple[SectionSpec, ...]


_T, _F, _IF, _I = SectionKind.TEXT, SectionKind.FIELDS, SectionKind.ITEM_FIELDS, SectionKind.ITEMS

# fmt: off
SCHEMA: Mapping[LayerKind, LayerSpec] = MappingProxyType({
    LayerKind.SYSTEM: LayerSpec("AI Role & Boundaries", (
        SectionSpec("Role Definition", _T),
        SectionSpec("Behavioral Constraints", _F, (
            "Tone", "Detail Level", "Boundaries", "Security", "Decision Authority")),
    )),
    LayerKind.DOMAIN: LayerSpec("Specialized Knowledge Required", (
        SectionSpec("Domain Terminology", _F),
        SectionSpec("Methodologies & Patterns", _F, (
            "Core patterns applicable to this domain", "Reference architectures",
            "Quality attributes")),
        SectionSpec("Business Context", _F, (
            "Business goals", "User needs", "Compliance requirements")),
    )),
    LayerKind.TASK: LayerSpec("Specific Task Definition", (
        SectionSpec("Objective", _T),
        SectionSpec("Success Criteria", _IF, ("Functional", "Non-Functional")),
        SectionSpec("Constraints", _F, (
            "Technology constraints", "Resource constraints", "Timeline constraints",
            "Quality constraints")),
    )),
    LayerKind.INTERACTION: LayerSpec("Communication Protocol", (
        SectionSpec("Interaction Style", _F, (
            "Feedback frequency", "Error handling approach", "Clarification protocol")),
        SectionSpec("Examples of Expected Interactions", _I),
        SectionSpec("Behavioral Guidelines", _F, (
            "Proactivity", "Transparency", "Iteration approach")),
    )),
    LayerKind.RESPONSE: LayerSpec("Output Specification", (
        SectionSpec("Format Requirements", _F, (
            "Required formats", "Structure requirements", "Documentation standards")),
        SectionSpec("Quality Gates", _I, optional=True),
    )),
})
# fmt: on
"""The known layers, in canonical order, with their subtitles and expected sections."""

METADATA_FIELDS: tuple[str, ...] = (
    "Creation Date",
    "Author",
    "Domain",
    "Task Type",
    "Context Category",
)
"""The metadata keys every stack should have."""

_SPECS_BY_KEY = {heading_key(s.heading): s for spec in SCHEMA.values() for s in spec.sections}


def section_spec(heading: str) -> SectionSpec | None:
    """Return the schema's section whose heading has the same words, in any layer."""
    return _SPECS_BY_KEY.get(heading_key(heading))


def placeholder(name: str) -> str:
    """Return the placeholder for a name: ``"Detail Level"`` gives ``{{detail_level}}``."""
    return "{{" + "_".join(re.findall(r"[a-z0-9]+", name.casefold())) + "}}"


def _blank_section(spec: SectionSpec) -> Section:
    if spec.kind is SectionKind.TEXT:
        return Section(spec.heading, text=placeholder(spec.heading))
    if spec.kind is SectionKind.ITEMS:
        return Section(spec.heading, items=(placeholder(spec.heading),))
    if spec.kind is SectionKind.ITEM_FIELDS:
        fields = tuple(Field(name, items=(placeholder(name),)) for name in spec.field_names)
        return Section(spec.heading, fields=fields)
    names = spec.field_names or ("{{term}}",)
    values = (placeholder(name) for name in spec.field_names or ("definition",))
    return Section(spec.heading, fields=tuple(map(Field, names, values)))


def blank_context_stack() -> ContextStack:
    """Return the full template: every layer, section and field, valued with ``{{placeholders}}``.

    Returns:
        A valid stack whose lint report lists every placeholder still to fill in.
    """
    return ContextStack(
        title=placeholder("title"),
        metadata=tuple(Field(name, placeholder(name)) for name in METADATA_FIELDS),
        layers=tuple(
            Layer(kind, spec.subtitle, tuple(map(_blank_section, spec.sections)))
            for kind, spec in SCHEMA.items()
        ),
    )
