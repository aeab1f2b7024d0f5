"""The OpenAI-compatible fallback reports the provider's reason for an HTTP error."""

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ctxfy.adapters.llm_openai import OpenAICompatibleLLM
from ctxfy.core.errors import LLMResponseError
from ctxfy.core.llm import ChatMessage, CompletionRequest

KEY = "sk-very-secret-key-42"
REQUEST = CompletionRequest((ChatMessage("user", "Draft the stack for PROMPT-TEXT-7"),))


def provider(status: int, body: Any) -> Starlette:
    """A chat-completions endpoint that always answers ``status`` with ``body``."""

    async def chat(request: Request) -> Response:
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=status)
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


async def fail(serve_http: Any, status: int, body: Any, api_key: str = KEY) -> str:
    async with serve_http(provider(status, body)) as url:
        llm = OpenAICompatibleLLM(f"{url}/v1", "x", api_key=api_key, timeout_s=5)
        with pytest.raises(LLMResponseError) as info:
            await llm.complete(REQUEST)
    return str(info.value)


async def test_the_providers_error_message_follows_the_status(serve_http: Any) -> None:
    body = {"error": {"message": "model 'x' not found", "type": "invalid_request_error"}}
    assert await fail(serve_http, 404, body) == (
        "the LLM fallback answered HTTP 404: model 'x' not found"
    )


async def test_the_reason_never_carries_the_key_and_stays_short(serve_http: Any) -> None:
    echo = f"Incorrect API key provided: {KEY}.\n\x1b[31m" + "details " * 100
    message = await fail(serve_http, 401, {"error": {"message": echo}})
    assert message.startswith(
        "the LLM fallback answered HTTP 401: Incorrect API key provided: [redacted]. [31mdetails"
    )
    assert KEY not in message
    assert "\x1b" not in message
    assert "\n" not in message
    assert len(message) == len("the LLM fallback answered HTTP 401: ") + 200
    assert message.endswith("…")


@pytest.mark.parametrize(
    ("provider_message", "reason"),
    [
        (
            "Incorrect API key provided: sk-proj-****************abcd. See your keys.",
            "Incorrect API key provided: [redacted] See your keys.",
        ),
        ("Project has no access for SK-live-ABC", "Project has no access for [redacted]"),
        (
            "Organization org-Z8a7Q2w9 has hit its quota",
            "Organization [redacted] has hit its quota",
        ),
        (
            "invalid header Authorization: Bearer abc.def.ghi (expired)",
            "invalid header Authorization: [redacted] (expired)",
        ),
        ("bearer\ttoken-123 was refused", "[redacted] was refused"),
        ("risk-free retry later", "risk-free retry later"),
    ],
)
async def test_secret_shaped_text_in_the_reason_is_redacted(
    serve_http: Any, provider_message: str, reason: str
) -> None:
    message = await fail(serve_http, 401, {"error": {"message": provider_message}})
    assert message == f"the LLM fallback answered HTTP 401: {reason}"


async def test_a_short_placeholder_key_does_not_blank_ordinary_text(serve_http: Any) -> None:
    body = {"error": {"message": "model 'x' not found on this box"}}
    message = await fail(serve_http, 404, body, api_key="x")
    assert message == "the LLM fallback answered HTTP 404: model 'x' not found on this box"


@pytest.mark.parametrize(
    "body",
    ["<html>Bad gateway PROMPT-TEXT-7</html>", {"detail": "PROMPT-TEXT-7"}, {"error": 3}],
)
async def test_without_an_error_message_only_the_status_is_reported(
    serve_http: Any, body: Any
) -> None:
    # Only the provider's error.message is used: never the raw body, which may echo the
    # request (the prompt) back.
    assert await fail(serve_http, 502, body) == "the LLM fallback answered HTTP 502"


async def test_the_shared_fake_servers_error_reason_reaches_the_caller(
    fake_llm_server: Any,
) -> None:
    fake_llm_server.mode = "error"
    llm = OpenAICompatibleLLM(fake_llm_server.base_url, "m", timeout_s=5)
    with pytest.raises(LLMResponseError, match=r"^the LLM fallback answered HTTP 500: boom$"):
        await llm.complete(REQUEST)
