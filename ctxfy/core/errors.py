"""ctxfy's one error tree.

Every error the core raises derives from :class:`CtxfyError`, so a caller can catch the
base class. Adapters translate these at the edge (JSON-RPC codes for MCP,
``application/problem+json`` for REST) and never leak stack traces to clients::

    CtxfyError
    ├── ConfigurationError        a setting or a prompt file is wrong (start-up fails)
    ├── ContextStackParseError    text is not a context stack
    ├── InvalidArgumentsError     request arguments break their declared schema
    ├── LLMError                  the LLM port failed
    │   ├── LLMUnavailableError   no LLM can be reached (nothing configured)
    │   ├── LLMTimeoutError       the LLM did not answer in time
    │   └── LLMResponseError      the LLM answered with an error or garbage
    ├── DraftRejectedError        the LLM's drafts never became a usable context stack
    ├── InvalidDurationError      a duration such as ``30d`` is malformed
    └── AuthError                 access control refused a request or could not decide
        ├── MalformedKeyError     the text is not a ctxfy API key (the text is never echoed)
        ├── KeyNotFoundError      no key has this key id
        ├── KeyStateError         the key's state forbids the change (revoked, rotated, duplicate)
        ├── KeyRequestError       a key request breaks a rule (name, scope, expiry, rate limit)
        ├── KeyStoreUnavailableError  the key store cannot be reached (requests are refused)
        └── RateLimitError        the per-key rate limit refused a request
            ├── RateLimitExceededError    the key used up its limit; retry later
            └── RateLimitUnavailableError the limit storage failed (requests are refused)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctxfy.core.params import FieldError


class CtxfyError(Exception):
    """Base class of every error ctxfy raises on purpose."""


class ConfigurationError(CtxfyError):
    """A setting, or a user prompt file, is invalid; start-up must fail with this message."""


class ContextStackParseError(CtxfyError):
    """The text has no recognisable context-stack structure."""


class InvalidArgumentsError(CtxfyError):
    """Arguments broke their declared schema.

    Attributes:
        errors: Every problem found, not just the first.
    """

    def __init__(self, errors: tuple[FieldError, ...]) -> None:
        self.errors = errors
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
        super().__init__(f"invalid arguments: {summary}")


class LLMError(CtxfyError):
    """An LLM call failed."""


class LLMUnavailableError(LLMError):
    """No LLM is reachable: the client cannot sample and no server-side fallback is set."""


class LLMTimeoutError(LLMError):
    """The LLM did not answer within the configured timeout."""


class LLMResponseError(LLMError):
    """The LLM answered with an error status or with a body that is not a completion."""


class DraftRejectedError(CtxfyError):
    """The LLM's drafts did not become a usable context stack, even after a retry."""


class InvalidDurationError(CtxfyError):
    """A duration text such as ``30d`` or ``15m`` is malformed or out of range."""


class AuthError(CtxfyError):
    """Access control refused a request or could not decide (base of key and limit errors)."""


class MalformedKeyError(AuthError):
    """The text is not a well-formed ctxfy API key.

    The message never contains the text itself: it may be a secret pasted by mistake.
    """


class KeyNotFoundError(AuthError):
    """No key with this key id exists in the key store."""


class KeyStateError(AuthError):
    """The key's current state forbids the change (revoked, already rotated, duplicate id)."""


class KeyRequestError(AuthError):
    """A key request breaks a rule: empty name, unknown scope, expiry beyond the maximum."""


class KeyStoreUnavailableError(AuthError):
    """The key store cannot be reached; requests that present a key are refused."""


class RateLimitError(AuthError):
    """The per-key rate limit refused a request."""


class RateLimitExceededError(RateLimitError):
    """The key used up its rate limit.

    Attributes:
        retry_after: Whole seconds until a request can succeed again.
    """

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"rate limit exceeded; retry after {retry_after} s")


class RateLimitUnavailableError(RateLimitError):
    """The rate-limit storage failed; requests are refused rather than let through."""
