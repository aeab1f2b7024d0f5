"""In-memory fakes of ctxfy's ports, for ctxfy's own tests and for users' tests.

Organised by port; each fake records what it was asked so tests can assert on it.
"""

import socket
from collections.abc import Iterable, Mapping

import attrs

from ctxfy.core.errors import LLMError
from ctxfy.core.llm import Completion, CompletionRequest
from ctxfy.core.telemetry import TargetKind

# --- LLM port -------------------------------------------------------------------------------


class ScriptedLLM:
    """An LLM port that answers from a script, in order, and records every request.

    Each scripted answer is either the text to return or an :class:`LLMError` to raise.

    Example:
        ```python
        llm = ScriptedLLM(["# CONTEXT STACK: ..."], model="fake-1")
        draft = await draft_context_stack(prompt, llm)
        assert llm.requests[0].messages[0].text == prompt
        ```
    """

    def __init__(self, answers: Iterable[str | LLMError], *, model: str = "scripted-llm") -> None:
        self._answers = list(answers)
        self.model = model
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        """Return (or raise) the next scripted answer."""
        self.requests.append(request)
        if not self._answers:
            raise AssertionError("ScriptedLLM ran out of answers")
        answer = self._answers.pop(0)
        if isinstance(answer, LLMError):
            raise answer
        return Completion(text=answer, model=self.model)


# --- Metrics port (ctxfy.core.telemetry.MetricsRecorder) -------------------------------------


@attrs.frozen
class MetricCall:
    """One call made to :class:`RecordingMetrics`.

    Attributes:
        name: The port method called, for example ``"record_operation"``.
        arguments: Its arguments by name.
    """

    name: str
    arguments: Mapping[str, object]


class RecordingMetrics:
    """A ``MetricsRecorder`` that keeps every call, in order, for assertions.

    Example:
        ```python
        metrics = RecordingMetrics()
        mcp = FastMCP("t", middleware=[RequestLogMiddleware(metrics=metrics)])
        async with Client(mcp) as client:
            await client.get_prompt("greet", {"name": "Ada"})
        [op] = metrics.named("record_operation")[-1:]
        assert op["method"] == "prompts/get" and op["error_type"] is None
        ```
    """

    def __init__(self) -> None:
        self.calls: list[MetricCall] = []

    def named(self, name: str) -> list[Mapping[str, object]]:
        """Return the arguments of every call to the method ``name``, in order."""
        return [call.arguments for call in self.calls if call.name == name]

    def _add(self, name: str, **arguments: object) -> None:
        self.calls.append(MetricCall(name, arguments))

    def record_operation(
        self,
        *,
        method: str,
        target_kind: TargetKind | None,
        target: str | None,
        duration_s: float,
        error_type: str | None,
    ) -> None:
        """Keep the call."""
        self._add(
            "record_operation",
            method=method,
            target_kind=target_kind,
            target=target,
            duration_s=duration_s,
            error_type=error_type,
        )

    def record_llm_call(self, *, model: str, duration_s: float, error_type: str | None) -> None:
        """Keep the call."""
        self._add("record_llm_call", model=model, duration_s=duration_s, error_type=error_type)

    def record_http(
        self, *, method: str, route: str | None, status: int, duration_s: float
    ) -> None:
        """Keep the call."""
        self._add("record_http", method=method, route=route, status=status, duration_s=duration_s)

    def count_auth_failure(self, reason: str) -> None:
        """Keep the call."""
        self._add("count_auth_failure", reason=reason)

    def count_rate_limited(self) -> None:
        """Keep the call."""
        self._add("count_rate_limited")

    def count_validation_rejection(self, rule: str) -> None:
        """Keep the call."""
        self._add("count_validation_rejection", rule=rule)

    def count_injection_flag(self, pattern: str) -> None:
        """Keep the call."""
        self._add("count_injection_flag", pattern=pattern)


# --- Network ----------------------------------------------------------------------------------


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (for test servers).

    Example:
        ```python
        port = free_tcp_port()
        process = subprocess.Popen(["python", "-m", "ctxfy", "--port", str(port)])
        ```
    """
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
