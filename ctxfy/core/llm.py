"""The LLM port: what the core needs from a language model, and nothing more.

Adapters implement :class:`LLMPort`: the MCP client's own LLM through ``ctx.sample``, an
OpenAI-compatible chat-completions server as the server-side fallback, and test fakes.
"""

from typing import Literal, Protocol

import attrs


@attrs.frozen
class ChatMessage:
    """One message of a conversation with the model.

    Attributes:
        role: Who speaks: ``"user"`` or ``"assistant"``.
        text: What they say.
    """

    role: Literal["user", "assistant"]
    text: str


@attrs.frozen
class CompletionRequest:
    """A request for one completion.

    Attributes:
        messages: The conversation so far, oldest first; the last one is the user's.
        system_prompt: Optional system prompt.
        max_tokens: Upper bound on the length of the answer.
        temperature: Optional sampling temperature.
    """

    messages: tuple[ChatMessage, ...] = attrs.field(validator=attrs.validators.min_len(1))
    system_prompt: str | None = None
    max_tokens: int = attrs.field(default=4096, validator=attrs.validators.ge(1))
    temperature: float | None = None


@attrs.frozen
class Completion:
    """The model's answer.

    Attributes:
        text: The text of the answer.
        model: The name of the model that answered, as reported by its provider.
    """

    text: str
    model: str


class LLMPort(Protocol):
    """Anything that can complete a conversation."""

    async def complete(self, request: CompletionRequest) -> Completion:
        """Return the model's answer to ``request``.

        Raises:
            LLMUnavailableError: No model can be reached.
            LLMTimeoutError: The model did not answer in time.
            LLMResponseError: The model answered with an error or an unusable body.
        """
        ...
