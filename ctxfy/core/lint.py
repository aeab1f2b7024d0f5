"""Lint a context stack against the known schema.

Rules, each with its finding code:

* ``missing-layer`` (ERROR): one of the five layers is absent;
* ``placeholder`` (ERROR): a ``{{placeholder}}`` was left unfilled, anywhere;
* ``missing-section`` / ``empty-section`` (WARNING, INFO for the optional Quality Gates);
* ``missing-field`` / ``empty-field`` (WARNING): an expected field is absent or has neither a
  value nor items;
* ``unmeasurable-criterion`` (WARNING): a non-functional success criterion has no number (a
  digit, or a number word such as "zero" or "twice"); an unfilled placeholder is reported as
  such instead;
* ``missing-metadata`` (WARNING) and ``missing-title`` (WARNING);
* ``unparseable`` (ERROR, only from :func:`lint_markdown`): the text is no context stack.

The score starts at 100 and loses 15 per ERROR, 5 per WARNING and 1 per INFO, floored at 0.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator

import attrs

from ctxfy.core.errors import ContextStackParseError
from ctxfy.core.markdown import parse_context_stack
from ctxfy.core.stack import (
    ContextStack,
    Field,
    Layer,
    LayerKind,
    Section,
)
from ctxfy.core.stack_schema import (
    METADATA_FIELDS,
    SCHEMA,
    SectionKind,
    SectionSpec,
)

_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
_NUMBER = re.compile(
    r"\d|\b(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|"
    r"billion|half|once|twice|double|triple|percent)\b",
    re.IGNORECASE,
)


class Severity(enum.Enum):
    """How much a finding matters: an ERROR makes the report not ``ok``."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_PENALTY = {Severity.ERROR: 15, Severity.WARNING: 5, Severity.INFO: 1}


def _non_empty(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must not be empty")


@attrs.frozen
class Finding:
    """One problem found in a stack.

    Attributes:
        code: A stable kebab-case code, e.g. ``"missing-field"``.
        severity: How much it matters.
        message: A sentence for humans that names where the problem is.
        location: A slash path, e.g. ``"task/Success Criteria/Non-Functional"``.
    """

    code: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    severity: Severity = attrs.field(validator=attrs.validators.instance_of(Severity))
    message: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    location: str = attrs.field(validator=attrs.validators.instance_of(str))


def _score_range(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"LintReport.score must be an int from 0 to 100 (got {value!r})")


@attrs.frozen
class LintReport:
    """Everything the linter found in one stack.

    Attributes:
        findings: The findings, in document order.
        layers_present: The layers the stack has, in canonical order.
        layers_missing: The layers it lacks, in canonical order.
        score: 0 to 100; 100 minus 15 per ERROR, 5 per WARNING, 1 per INFO, floored at 0.
    """

    findings: tuple[Finding, ...]
    layers_present: tuple[LayerKind, ...]
    layers_missing: tuple[LayerKind, ...]
    score: int = attrs.field(validator=_score_range)

    @property
    def ok(self) -> bool:
        """Whether no finding is an ERROR."""
        return all(f.severity is not Severity.ERROR for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict: ok, score, layer lists (by value) and findings."""
        return {
            "ok": self.ok,
            "score": self.score,
            "layers_present": [kind.value for kind in self.layers_present],
            "layers_missing": [kind.value for kind in self.layers_missing],
            "findings": [
                {
                    "code": f.code,
                    "severity": f.severity.value,
                    "message": f.message,
                    "location": f.location,
                }
                for f in self.findings
            ],
        }


def lint_context_stack(stack: ContextStack) -> LintReport:
    """Check a stack against the schema (see the module docstring for the rules).

    Args:
        stack: The stack to check.

    Returns:
        The report; it never raises.
    """
    findings = [*_title_and_metadata(stack)]
    for kind, spec in SCHEMA.items():
        layer = stack.layer(kind)
        if layer is None:
            message = f"The {kind.heading} is missing."
            findings.append(Finding("missing-layer", Severity.ERROR, message, kind.value))
        else:
            for section_spec in spec.sections:
                findings += _section_findings(layer, section_spec)
    findings += _placeholders(stack)
    present = tuple(kind for kind in LayerKind if stack.layer(kind) is not None)
    missing = tuple(kind for kind in LayerKind if kind not in present)
    score = max(0, 100 - sum(_PENALTY[f.severity] for f in findings))
    return LintReport(tuple(findings), present, missing, score)


def lint_markdown(text: str) -> tuple[ContextStack | None, LintReport]:
    """Parse text and lint the stack; text that is no context stack gets an ``unparseable`` report.

    Args:
        text: Any text.

    Returns:
        The stack (``None`` when unparseable) and its report; it never raises.
    """
    try:
        stack = parse_context_stack(text)
    except ContextStackParseError as exc:
        finding = Finding("unparseable", Severity.ERROR, str(exc), "document")
        return None, LintReport((finding,), (), tuple(LayerKind), 0)
    return stack, lint_context_stack(stack)


def _title_and_metadata(stack: ContextStack) -> Iterator[Finding]:
    if not stack.title:
        yield Finding("missing-title", Severity.WARNING, "The stack has no title.", "title")
    for name in METADATA_FIELDS:
        field = next((f for f in stack.metadata if f.key.casefold() == name.casefold()), None)
        where = f"metadata/{name}"
        if field is None:
            message = f"Metadata field '{name}' is missing."
            yield Finding("missing-metadata", Severity.WARNING, message, where)
        elif _is_empty(field):
            yield Finding("empty-field", Severity.WARNING, f"Metadata '{name}' is empty.", where)


def _section_findings(layer: Layer, spec: SectionSpec) -> Iterator[Finding]:
    severity = Severity.INFO if spec.optional else Severity.WARNING
    where = f"{layer.kind.value}/{spec.heading}"
    section = layer.section(spec.heading)
    if section is None:
        message = f"Section '{spec.heading}' is missing from the {layer.kind.heading}."
        yield Finding("missing-section", severity, message, where)
        return
    if not (section.text or section.items or not all(map(_is_empty, section.fields))):
        message = f"Section '{spec.heading}' in the {layer.kind.heading} is empty."
        yield Finding("empty-section", severity, message, where)
        return
    if spec.kind in (SectionKind.FIELDS, SectionKind.ITEM_FIELDS):
        for name in spec.field_names:
            if section.field(name) is None:
                message = f"Field '{name}' is missing from '{spec.heading}'."
                yield Finding("missing-field", Severity.WARNING, message, f"{where}/{name}")
        for field in filter(_is_empty, section.fields):
            message = f"Field '{field.key}' in '{spec.heading}' is empty."
            yield Finding("empty-field", Severity.WARNING, message, f"{where}/{field.key}")
    if layer.kind is LayerKind.TASK and spec.heading == "Success Criteria":
        yield from _unmeasurable(section, f"{where}/Non-Functional")


def _unmeasurable(section: Section, where: str) -> Iterator[Finding]:
    field = section.field("Non-Functional")
    if field is None:
        return
    for criterion in (field.value, *field.items) if field.value else field.items:
        if not (_NUMBER.search(criterion) or _PLACEHOLDER.search(criterion)):
            message = f"Non-functional criterion has no measurable number: {criterion!r}."
            yield Finding("unmeasurable-criterion", Severity.WARNING, message, where)


def _is_empty(field: Field) -> bool:
    return not (field.value or field.items)


def _placeholders(stack: ContextStack) -> Iterator[Finding]:
    for where, value in _strings(stack):
        for placeholder in dict.fromkeys(_PLACEHOLDER.findall(value)):
            message = f"Unfilled placeholder {placeholder} at {where}."
            yield Finding("placeholder", Severity.ERROR, message, where)


def _strings(stack: ContextStack) -> Iterator[tuple[str, str]]:
    yield "title", stack.title
    yield from _field_strings(stack.metadata, "metadata")
    for layer in stack.layers:
        yield layer.kind.value, layer.subtitle
        for section in layer.sections:
            where = f"{layer.kind.value}/{section.heading}"
            yield from ((where, s) for s in (section.heading, section.text, *section.items))
            yield from _field_strings(section.fields, where)


def _field_strings(fields: tuple[Field, ...], where: str) -> Iterator[tuple[str, str]]:
    for field in fields:
        yield from ((f"{where}/{field.key}", s) for s in (field.key, field.value, *field.items))
