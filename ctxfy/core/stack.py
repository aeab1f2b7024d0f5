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

The line grammar lives in :mod:`ctxfy.core.stack_syntax`, shared with the parser; the known
schema and the blank template live in :mod:`ctxfy.core.stack_schema`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import attrs

from ctxfy.core.stack_syntax import (
    heading_key,
    is_block_syntax,
    match_bold_field,
    structural_role,
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
