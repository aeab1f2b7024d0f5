"""Linting context stacks: one focused test per rule, the score, and the never-raise contract."""

import json
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxfy.core.lint import Finding, LintReport, Severity, lint_context_stack, lint_markdown
from ctxfy.core.markdown import parse_context_stack
from ctxfy.core.stack import (
    ContextStack,
    Field,
    Layer,
    LayerKind,
    Section,
)
from ctxfy.core.stack_schema import (
    blank_context_stack,
)
from tests.unit.core.test_markdown import FRAGMENTS

SEED = Path(__file__).parents[2] / "fixtures" / "context-stack-ctxfy-production.md"


@pytest.fixture
def seed() -> ContextStack:
    return parse_context_stack(SEED.read_text(encoding="utf-8"))


def codes(report: LintReport) -> list[str]:
    return [f.code for f in report.findings]


def with_section(stack: ContextStack, kind: LayerKind, section: Section) -> ContextStack:
    """Replace (by heading) or add one section of one layer."""
    layer = stack.layer(kind)
    assert layer is not None
    kept = tuple(s for s in layer.sections if s.heading != section.heading)
    new_layer = attrs.evolve(layer, sections=(*kept, section))
    return attrs.evolve(stack, layers=tuple(new_layer if x is layer else x for x in stack.layers))


def test_seed_is_ok_with_one_vague_criterion_and_no_quality_gates(seed: ContextStack) -> None:
    report = lint_context_stack(seed)
    assert report.ok
    assert report.layers_present == tuple(LayerKind)
    assert report.layers_missing == ()
    assert codes(report) == ["unmeasurable-criterion", "missing-section"]
    vague, gates = report.findings
    assert vague.location == "task/Success Criteria/Non-Functional"
    assert "Automated deployment pipeline" in vague.message
    assert (gates.severity, gates.location) == (Severity.INFO, "response/Quality Gates")
    assert report.score == 100 - 5 - 1


def test_missing_layer_is_an_error(seed: ContextStack) -> None:
    stack = attrs.evolve(seed, layers=seed.layers[:-1])
    report = lint_context_stack(stack)
    assert not report.ok
    assert report.layers_missing == (LayerKind.RESPONSE,)
    (missing,) = [f for f in report.findings if f.code == "missing-layer"]
    assert (missing.severity, missing.location) == (Severity.ERROR, "response")
    assert "Response Context Layer" in missing.message


def test_placeholders_are_errors_naming_where_they_are(seed: ContextStack) -> None:
    constraints = Section("Behavioral Constraints", fields=(Field("Tone", "{{ tone }}"),))
    report = lint_context_stack(with_section(seed, LayerKind.SYSTEM, constraints))
    (found,) = [f for f in report.findings if f.code == "placeholder"]
    assert found.severity is Severity.ERROR
    assert found.location == "system/Behavioral Constraints/Tone"
    assert "{{ tone }}" in found.message
    assert not report.ok


def test_placeholders_in_title_text_and_items_are_found() -> None:
    stack = ContextStack(
        "{{title}}",
        layers=(Layer(LayerKind.TASK, sections=(Section("Notes", "Do {{x}}.", ("{{y}}",)),)),),
    )
    found = [(f.location, f.message) for f in lint_context_stack(stack).findings]
    placeholders = [where for where, message in found if "placeholder" in message]
    assert placeholders == ["title", "task/Notes", "task/Notes"]


def criteria(*non_functional: str) -> Section:
    return Section(
        "Success Criteria",
        fields=(
            Field("Functional", items=("works",)),
            Field("Non-Functional", items=non_functional),
        ),
    )


def test_non_functional_criterion_without_a_number_is_unmeasurable(seed: ContextStack) -> None:
    stack = with_section(seed, LayerKind.TASK, criteria("Fast enough", "p95 under 200 ms"))
    vague = [f for f in lint_context_stack(stack).findings if f.code == "unmeasurable-criterion"]
    assert [f.severity for f in vague] == [Severity.WARNING]
    assert "Fast enough" in vague[0].message


def test_a_criterion_written_as_the_field_value_is_checked_too(seed: ContextStack) -> None:
    section = Section("Success Criteria", fields=(Field("Non-Functional", "Fast"),))
    report = lint_context_stack(with_section(seed, LayerKind.TASK, section))
    assert codes(report).count("unmeasurable-criterion") == 1
    assert ("missing-field", "task/Success Criteria/Functional") in {
        (f.code, f.location) for f in report.findings
    }


def test_without_non_functional_criteria_nothing_is_unmeasurable(seed: ContextStack) -> None:
    section = Section("Success Criteria", fields=(Field("Functional", "Works"),))
    report = lint_context_stack(with_section(seed, LayerKind.TASK, section))
    assert "unmeasurable-criterion" not in codes(report)
    assert "missing-field" in codes(report)


@pytest.mark.parametrize(
    "criterion", ["Zero critical vulnerabilities", "Restarts at most twice a day", "99.9% up"]
)
def test_number_words_and_digits_count_as_measurable(seed: ContextStack, criterion: str) -> None:
    stack = with_section(seed, LayerKind.TASK, criteria(criterion))
    assert "unmeasurable-criterion" not in codes(lint_context_stack(stack))


def test_missing_and_empty_sections_and_fields_are_warnings(seed: ContextStack) -> None:
    stack = with_section(seed, LayerKind.SYSTEM, Section("Behavioral Constraints", "Be nice."))
    stack = with_section(stack, LayerKind.TASK, Section("Objective"))
    stack = with_section(
        stack, LayerKind.DOMAIN, Section("Business Context", fields=(Field("User needs", "x"),))
    )
    stack = with_section(stack, LayerKind.RESPONSE, Section("Quality Gates"))
    stack = with_section(
        stack,
        LayerKind.DOMAIN,
        Section("Domain Terminology", fields=(Field("MCP", "protocol"), Field("Port"))),
    )
    found = {(f.code, f.location): f.severity for f in lint_context_stack(stack).findings}
    assert found[("empty-section", "task/Objective")] is Severity.WARNING
    assert found[("empty-section", "response/Quality Gates")] is Severity.INFO
    assert found[("missing-field", "system/Behavioral Constraints/Tone")] is Severity.WARNING
    assert found[("missing-field", "domain/Business Context/Business goals")] is Severity.WARNING
    assert found[("empty-field", "domain/Domain Terminology/Port")] is Severity.WARNING
    assert ("missing-field", "domain/Business Context/User needs") not in found


def test_missing_section_is_a_warning(seed: ContextStack) -> None:
    interaction = seed.layer(LayerKind.INTERACTION)
    assert interaction is not None
    trimmed = attrs.evolve(interaction, sections=interaction.sections[1:])
    layers = tuple(trimmed if x is interaction else x for x in seed.layers)
    report = lint_context_stack(attrs.evolve(seed, layers=layers))
    (missing,) = [f for f in report.findings if f.location == "interaction/Interaction Style"]
    assert (missing.code, missing.severity) == ("missing-section", Severity.WARNING)


def test_missing_metadata_and_title_are_warnings(seed: ContextStack) -> None:
    stack = attrs.evolve(seed, title="", metadata=(Field("author", "me"), Field("Domain")))
    found = {(f.code, f.location) for f in lint_context_stack(stack).findings}
    assert ("missing-title", "title") in found
    assert ("missing-metadata", "metadata/Creation Date") in found
    assert ("empty-field", "metadata/Domain") in found
    assert not any(location == "metadata/Author" for _, location in found)


def test_score_follows_the_documented_penalties(seed: ContextStack) -> None:
    clean = lint_context_stack(seed)
    worse = lint_context_stack(attrs.evolve(seed, title="", layers=seed.layers[1:]))
    assert worse.score < clean.score
    penalty = {Severity.ERROR: 15, Severity.WARNING: 5, Severity.INFO: 1}
    assert worse.score == 100 - sum(penalty[f.severity] for f in worse.findings)


def test_blank_template_lints_with_a_placeholder_error_everywhere() -> None:
    report = lint_context_stack(blank_context_stack())
    assert not report.ok
    assert report.score == 0
    assert report.layers_missing == ()
    placeholders = {f.location for f in report.findings if f.code == "placeholder"}
    assert {"title", "metadata/Author", "system/Role Definition"} <= placeholders
    assert "task/Success Criteria/Non-Functional" in placeholders
    assert "unmeasurable-criterion" not in codes(report)


def test_lint_markdown_parses_then_lints(seed: ContextStack) -> None:
    stack, report = lint_markdown(SEED.read_text(encoding="utf-8"))
    assert stack == seed
    assert report == lint_context_stack(seed)


def test_unparseable_text_gets_one_error_and_score_zero() -> None:
    stack, report = lint_markdown("just some prose")
    assert stack is None
    (finding,) = report.findings
    assert (finding.code, finding.severity, finding.location) == (
        "unparseable",
        Severity.ERROR,
        "document",
    )
    assert "not a context stack" in finding.message
    assert (report.score, report.ok, report.layers_missing) == (0, False, tuple(LayerKind))


@given(st.one_of(st.text(), st.lists(FRAGMENTS, max_size=25).map("\n".join)))
def test_lint_markdown_never_raises(text: str) -> None:
    # Arbitrary text rarely parses; the fragments build near-stacks that do, so the
    # linter's checks of parsed stacks (fields, placeholders, numbers) run too.
    stack, report = lint_markdown(text)
    assert 0 <= report.score <= 100
    assert (stack is None) == ("unparseable" in codes(report))


def test_report_to_dict_is_json_ready() -> None:
    _, report = lint_markdown("nothing here")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["score"] == 0
    assert data["layers_present"] == []
    assert data["layers_missing"] == [kind.value for kind in LayerKind]
    assert data["findings"][0]["severity"] == "error"
    assert data["findings"][0]["code"] == "unparseable"


@pytest.mark.parametrize("score", [-1, 101, True])
def test_report_score_must_be_an_int_from_0_to_100(score: int) -> None:
    with pytest.raises(ValueError, match="score"):
        LintReport((), (), (), score)


def test_finding_needs_a_code_and_a_message() -> None:
    with pytest.raises(ValueError, match="code"):
        Finding("", Severity.INFO, "m", "x")
    with pytest.raises(ValueError, match="message"):
        Finding("c", Severity.INFO, "", "x")
