"""The server-side LLM fallback: any OpenAI-compatible chat-completions server."""

import asyncio
import re
from typing import Any

import httpx

from ctxfy.core.errors import LLMResponseError, LLMTimeoutError
from ctxfy.core.llm import Completion, CompletionRequest


class OpenAICompatibleLLM:
    """An :class:`~ctxfy.core.llm.LLMPort` on the ``/chat/completions`` endpoint.

    Works with OpenAI and with compatible servers (vLLM, llama.cpp, Ollama, LM Studio, …).
    The API key is sent as a bearer token and never appears in errors or logs.

    Example:
        ```python
        llm = OpenAICompatibleLLM("http://127.0.0.1:11434/v1", "llama3.1", timeout_s=30)
        answer = await llm.complete(CompletionRequest((ChatMessage("user", "Hello"),)))
        ```
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._timeout_s = timeout_s
        self._transport = transport

    @property
    def model(self) -> str:
        """The configured model name."""
        return self._model

    async def complete(self, request: CompletionRequest) -> Completion:
        """Ask the server; see :class:`~ctxfy.core.llm.LLMPort`."""
        messages: list[dict[str, str]] = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.extend({"role": m.role, "content": m.text} for m in request.messages)
        body: dict[str, Any] = {
            "model": self._model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        try:
            # One client per call: LLM calls take seconds, so pooling saves nothing, and no
            # connection outlives the request (nothing to close at shutdown).
            async with (
                asyncio.timeout(self._timeout_s),
                httpx.AsyncClient(
                    headers=self._headers,
                    timeout=httpx.Timeout(self._timeout_s),
                    transport=self._transport,
                ) as client,
            ):
                response = await client.post(self._url, json=body)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LLMTimeoutError(
                f"the LLM fallback did not answer within {self._timeout_s:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise LLMResponseError(
                f"the LLM fallback could not be reached: {type(exc).__name__}"
            ) from exc
        if response.status_code != 200:
            reason = _provider_reason(response, self._api_key)
            raise LLMResponseError(
                f"the LLM fallback answered HTTP {response.status_code}"
                + (f": {reason}" if reason else "")
            )
        return _parse_completion(response, self._model)


# The longest part of a provider's error message repeated in ctxfy's error.
_REASON_MAX_CHARS = 200
# The configured key is blanked wherever it appears, but only from this length on: a short
# placeholder key ("x", "none" for a local server) would blank ordinary words.
_KEY_MIN_CHARS = 8
# Secret-shaped text a provider may quote: API keys, even masked (sk-proj-****abcd),
# organization ids and bearer tokens.
_SECRET_SHAPES = re.compile(r"\bsk-\S+|\borg-\w+|\bbearer\s+\S+", re.IGNORECASE)
_REDACTED = "[redacted]"


def _provider_reason(response: httpx.Response, api_key: str | None) -> str:
    """The provider's own ``error.message`` (OpenAI's error shape), cleaned and shortened.

    Only that field is used, never the raw body. The configured API key (8 characters or
    more) and secret-shaped text (``sk-...`` keys, masked or not, ``org-...`` ids,
    ``Bearer ...`` tokens) become ``[redacted]``; control characters and runs of whitespace
    become one space; at most 200 characters are kept. The message is not logged elsewhere.
    """
    try:
        data = response.json()
    except ValueError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str):
        return ""
    if api_key and len(api_key) >= _KEY_MIN_CHARS:
        message = message.replace(api_key, _REDACTED)
    message = " ".join("".join(c if c.isprintable() else " " for c in message).split())
    message = _SECRET_SHAPES.sub(_REDACTED, message)
    if len(message) > _REASON_MAX_CHARS:
        message = message[: _REASON_MAX_CHARS - 1] + "…"
    return message


def _parse_completion(response: httpx.Response, default_model: str) -> Completion:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LLMResponseError("the LLM fallback's answer is not a chat completion") from exc
    if not isinstance(content, str) or not content.strip():
        raise LLMResponseError("the LLM fallback's answer has no text")
    model = data.get("model") if isinstance(data, dict) else None
    return Completion(text=content, model=model if isinstance(model, str) else default_model)
