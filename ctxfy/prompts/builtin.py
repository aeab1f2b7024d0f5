"""The three built-in prompts: ``context_stack``, ``prp`` and ``technical_spec``.

Their names and parameters are part of ctxfy's public contract.
"""

from ctxfy.core.params import ParamSpec, ParamType
from ctxfy.core.prompt import PromptSpec

_SHORT = 500
_LONG = 8_000

CONTEXT_STACK = PromptSpec(
    name="context_stack",
    title="Context stack",
    description=(
        "Asks the model to write a complete five-layer context stack (System, Domain, Task, "
        "Interaction, Response) for a task, in the format ctxfy parses and lints."
    ),
    params=(
        ParamSpec(
            "objective",
            required=True,
            description="What the task must achieve, in a sentence or a paragraph.",
            example="Add API-key authentication with scopes to our FastMCP server.",
            max_length=_LONG,
        ),
        ParamSpec(
            "domain",
            description="The field the task belongs to.",
            example="AI/LLM integration and the MCP protocol",
            max_length=_SHORT,
        ),
        ParamSpec(
            "role",
            description="The role the model should take.",
            example="Senior Python engineer specialised in FastMCP",
            max_length=_SHORT,
        ),
        ParamSpec(
            "task_type",
            description="The kind of task, e.g. implementation, analysis, review, design.",
            example="Implementation",
            max_length=100,
        ),
        ParamSpec(
            "success_criteria",
            description="How success is judged; give numbers for non-functional criteria.",
            example="p95 latency under 200 ms; every endpoint documented in OpenAPI",
            max_length=_LONG,
        ),
        ParamSpec(
            "constraints",
            description="Technology, resource, timeline and quality constraints.",
            example="Python 3.13, FastMCP 3, no new runtime dependencies",
            max_length=_LONG,
        ),
        ParamSpec(
            "audience",
            description="Who will read or use the result.",
            example="Platform engineers deploying MCP servers",
            max_length=_SHORT,
        ),
        ParamSpec(
            "output_format",
            description="The formats the final answer must take.",
            example="Python code, configuration files and Markdown documentation",
            max_length=_SHORT,
        ),
    ),
    template="""\
Write a complete context stack for the task described below.

A context stack is a structured prompt in five layers:
- System: the role of the AI and its behavioural constraints (tone, detail level, boundaries,
  security, decision authority).
- Domain: terminology (term: definition), methodologies and patterns, business context.
- Task: the objective, functional and non-functional success criteria (every non-functional
  criterion with a measurable number), and constraints.
- Interaction: feedback frequency, error handling, clarification protocol, example exchanges
  and behavioural guidelines.
- Response: required formats, structure requirements, documentation standards and quality
  gates.

The task:

Objective: {{objective}}
Domain: {{domain}}
Role for the AI: {{role}}
Task type: {{task_type}}
Success criteria given by the user: {{success_criteria}}
Constraints given by the user: {{constraints}}
Audience: {{audience}}
Required output format: {{output_format}}

Fill in every field of the skeleton below: replace every placeholder in double braces with
real content and keep the headings exactly as they are. Where the user gave no information,
infer sensible values from the objective and say so briefly. Answer with the completed
Markdown only.

{{> context_stack_skeleton}}
""",
)

PRP = PromptSpec(
    name="prp",
    title="Product Requirements Prompt",
    description=(
        "A Product Requirements Prompt for a feature: goal, why, what, all needed context, "
        "implementation blueprint and validation loop."
    ),
    params=(
        ParamSpec(
            "feature",
            required=True,
            description="The feature to build.",
            example="Rotate API keys with a grace period during which the old key still works.",
            max_length=_LONG,
        ),
        ParamSpec(
            "context",
            description="Needed context: code, documentation, examples and gotchas.",
            example="Keys live in SQLite; the CLI uses argparse; see docs/security.md.",
            max_length=_LONG,
        ),
        ParamSpec(
            "constraints",
            description="Constraints the implementation must respect.",
            example="No new dependencies; Python 3.11+",
            max_length=_LONG,
        ),
        ParamSpec(
            "validation",
            description="Commands or checks that must pass for the feature to be done.",
            example="nox -s tests lint typecheck",
            max_length=_SHORT * 4,
        ),
    ),
    template="""\
Write a Product Requirements Prompt (PRP) that an AI coding agent can implement in one pass.

The feature: {{feature}}
Context supplied by the user: {{context}}
Constraints: {{constraints}}
Validation the user requires: {{validation}}

Use exactly these sections, in this order:

## Goal
What the feature must achieve, and the end state.

## Why
The business value, who benefits, and how it fits the existing system.

## What
User-visible behaviour and technical requirements, with success criteria as a checklist.

## All Needed Context
Documentation, files, patterns to follow, and known gotchas of the libraries involved.

## Implementation Blueprint
Data models, then an ordered task list naming the files to create or change, with pseudocode
for the tricky parts and the integration points.

## Validation Loop
Level 1: syntax and style checks. Level 2: unit tests with their cases. Level 3: an
integration test. Give the exact commands, and what to do when one fails.
""",
)

TECHNICAL_SPEC = PromptSpec(
    name="technical_spec",
    title="Technical specification",
    description="A technical specification written from business requirements.",
    params=(
        ParamSpec(
            "business_requirements",
            required=True,
            description="The business requirements to turn into a specification.",
            example="Customers must be able to export their invoices as PDF within 5 seconds.",
            max_length=_LONG,
        ),
        ParamSpec(
            "system_context",
            description="The existing system: architecture, stack, interfaces.",
            example="Django monolith on PostgreSQL; invoices rendered with WeasyPrint.",
            max_length=_LONG,
        ),
        ParamSpec(
            "constraints",
            description="Technical, regulatory or organisational constraints.",
            example="GDPR; no data may leave the EU region",
            max_length=_LONG,
        ),
        ParamSpec(
            "audience",
            description="Who will read the specification.",
            example="Backend engineers and the security reviewer",
            max_length=_SHORT,
        ),
        ParamSpec(
            "detail_level",
            type=ParamType.ENUM,
            choices=("overview", "standard", "detailed"),
            description="How deep the specification goes.",
            example="standard",
        ),
    ),
    template="""\
Write a technical specification from the business requirements below.

Business requirements: {{business_requirements}}
The existing system: {{system_context}}
Constraints: {{constraints}}
Audience: {{audience}}
Level of detail: {{detail_level}}

Structure the specification as:
1. Summary: the problem and the proposed solution in one paragraph.
2. Requirements: functional requirements, then non-functional requirements, each with a
   measurable acceptance criterion.
3. Architecture: components, data flow and the interfaces between them.
4. Data model: entities, fields, constraints and migrations.
5. Interfaces: APIs with request and response shapes and error cases.
6. Security and privacy: threats and mitigations.
7. Observability: logs, metrics and alerts.
8. Testing strategy: unit, integration and end-to-end tests.
9. Rollout: steps, feature flags, rollback plan.
10. Open questions and risks.
""",
)
