"""The use case behind ``generate_context_stack``: draft, parse, lint, retry once.

The LLM is reached only through :class:`ctxfy.core.llm.LLMPort`, so this module stays pure:
it does no I/O of its own and is tested with a fake port.
"""

import re

import attrs

from ctxfy.core.errors import DraftRejectedError
from ctxfy.core.lint import LintReport, lint_markdown
from ctxfy.core.llm import ChatMessage, Completion, CompletionRequest, LLMPort
from ctxfy.core.markdown import render_context_stack
from ctxfy.core.stack import ContextStack

#: Drafts longer than this are refused unread (the MCP spec asks servers to validate outputs).
DEFAULT_MAX_DRAFT_CHARS = 60_000

SYSTEM_PROMPT = (
    "You are a context engineer. Answer with one complete context stack in Markdown and "
    "nothing else: no preamble, no closing remarks."
)

_FENCE_RE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


@attrs.frozen
class Draft:
    """A context stack drafted by an LLM and checked by the server.

    Attributes:
        stack: The parsed stack.
        markdown: The stack rendered by ctxfy (canonical Markdown).
        report: The lint report of the stack.
        model: The model that wrote the accepted draft.
        attempts: How many LLM calls it took (1 or 2).
    """

    stack: ContextStack
    markdown: str
    report: LintReport
    model: str
    attempts: int


def strip_code_fence(text: str) -> str:
    """Return ``text`` without one surrounding Markdown code fence, if it has one."""
    match = _FENCE_RE.match(text)
    return match.group(1) if match else text


def _usable(report: LintReport) -> bool:
    # A draft is usable when it parsed and has all five layers; other findings are
    # returned to the caller in the lint report rather than rejected.
    return not report.layers_missing and not any(f.code == "unparseable" for f in report.findings)


def _feedback(report: LintReport, too_long: bool, max_chars: int) -> str:
    lines = ["Your previous answer could not be used as a context stack:"]
    if too_long:
        lines.append(f"- it was longer than {max_chars} characters")
    lines.extend(f"- {finding.message}" for finding in report.findings[:20])
    lines.append(
        "Write the complete context stack again, with all five layers (System, Domain, "
        "Task, Interaction, Response), in the format shown before."
    )
    return "\n".join(lines)


async def draft_context_stack(
    prompt: str,
    llm: LLMPort,
    *,
    max_tokens: int = 4096,
    max_chars: int = DEFAULT_MAX_DRAFT_CHARS,
) -> Draft:
    """Ask ``llm`` for a context stack, and once more with the findings if it is unusable.

    Args:
        prompt: The rendered ``context_stack`` prompt.
        llm: The model to ask.
        max_tokens: Upper bound on each answer's length.
        max_chars: Answers longer than this are refused unread.

    Returns:
        The accepted draft.

    Raises:
        DraftRejectedError: Both answers were unusable; the message lists why.
        LLMError: The port failed (propagated unchanged).
    """
    messages: tuple[ChatMessage, ...] = (ChatMessage("user", prompt),)
    report: LintReport | None = None
    for attempt in (1, 2):
        request = CompletionRequest(messages, system_prompt=SYSTEM_PROMPT, max_tokens=max_tokens)
        completion: Completion = await llm.complete(request)
        text = strip_code_fence(completion.text)
        too_long = len(text) > max_chars
        stack, report = lint_markdown("" if too_long else text)
        if stack is not None and not too_long and _usable(report):
            return Draft(stack, render_context_stack(stack), report, completion.model, attempt)
        messages = (
            *messages,
            ChatMessage("assistant", text[:max_chars]),
            ChatMessage("user", _feedback(report, too_long, max_chars)),
        )
    assert report is not None  # noqa: S101 - the loop ran at least once
    reasons = "; ".join(f.message for f in report.findings[:5]) or "no context stack found"
    raise DraftRejectedError(
        f"the model's draft was not a usable context stack after 2 attempts: {reasons}"
    )
