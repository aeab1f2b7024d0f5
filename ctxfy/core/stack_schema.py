"""The known context-stack schema (layers, sections, fields) and the blank template."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ctxfy.core.stack import ContextStack, Field, Layer, LayerKind, Section
from ctxfy.core.stack_syntax import heading_key


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
