"""The draft use case: parse and lint the LLM's answer, retry once with the findings."""

import pytest

from ctxfy.core.errors import DraftRejectedError, LLMTimeoutError
from ctxfy.core.generation import SYSTEM_PROMPT, draft_context_stack, strip_code_fence
from ctxfy.core.stack import LayerKind
from ctxfy.testing import ScriptedLLM


async def test_a_good_first_draft_is_accepted_with_its_model(seed_text: str) -> None:
    llm = ScriptedLLM([seed_text], model="model-a")
    draft = await draft_context_stack("PROMPT", llm)
    assert draft.model == "model-a"
    assert draft.attempts == 1
    assert draft.stack.title == "ctxfy MCP Server Production Preparation and Observability"
    assert draft.report.layers_missing == ()
    assert draft.markdown.startswith("# CONTEXT STACK:")
    (request,) = llm.requests
    assert request.system_prompt == SYSTEM_PROMPT
    assert request.messages[0].text == "PROMPT"


async def test_a_fenced_draft_is_unwrapped(seed_text: str) -> None:
    llm = ScriptedLLM([f"```markdown\n{seed_text}\n```"])
    draft = await draft_context_stack("PROMPT", llm)
    assert draft.stack.layer(LayerKind.RESPONSE) is not None


async def test_an_unusable_draft_is_retried_once_with_the_findings(seed_text: str) -> None:
    llm = ScriptedLLM(["Sorry, I cannot help with that.", seed_text])
    draft = await draft_context_stack("PROMPT", llm)
    assert draft.attempts == 2
    retry = llm.requests[1].messages
    assert [m.role for m in retry] == ["user", "assistant", "user"]
    assert retry[1].text == "Sorry, I cannot help with that."
    assert "could not be used" in retry[2].text


async def test_a_draft_missing_layers_is_retried_and_then_rejected() -> None:
    partial = "# CONTEXT STACK: T\n\n## System Context Layer\n\n### Role Definition\nYou are X.\n"
    llm = ScriptedLLM([partial, partial])
    with pytest.raises(DraftRejectedError, match="after 2 attempts") as info:
        await draft_context_stack("PROMPT", llm)
    assert "Task" in str(info.value) or "task" in str(info.value)
    assert "missing" in llm.requests[1].messages[-1].text.lower()


async def test_an_oversized_draft_is_refused_unread(seed_text: str) -> None:
    llm = ScriptedLLM([seed_text + "x" * 500, seed_text])
    draft = await draft_context_stack("PROMPT", llm, max_chars=len(seed_text) + 10)
    assert draft.attempts == 2
    assert "longer than" in llm.requests[1].messages[-1].text


async def test_llm_errors_propagate_unchanged() -> None:
    llm = ScriptedLLM([LLMTimeoutError("too slow")])
    with pytest.raises(LLMTimeoutError, match="too slow"):
        await draft_context_stack("PROMPT", llm)


def test_strip_code_fence_only_strips_one_surrounding_fence() -> None:
    assert strip_code_fence("```md\nA\n```") == "A"
    assert strip_code_fence("A\n```\nB\n```") == "A\n```\nB\n```"
