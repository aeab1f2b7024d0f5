"""The LLM metric and the ``llm_model`` log field name the requested model, failures too."""

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctxfy.adapters.llm_openai import OpenAICompatibleLLM
from ctxfy.adapters.logging import configure_logging
from ctxfy.core.keys import Scope
from ctxfy.core.llm import Completion, CompletionRequest
from ctxfy.settings import Settings
from ctxfy.testing import RecordingMetrics
from tests.conftest import FakeLLMServer
from tests.integration.rest_support import rest_server

CONFIGURED = "configured-model"


@pytest.fixture
def log_sink() -> Iterator[io.StringIO]:
    sink = io.StringIO()
    undo = configure_logging("INFO", "json", sink)
    try:
        yield sink
    finally:
        undo()


class SilentLLM:
    """A configured model that never answers."""

    model = CONFIGURED

    async def complete(self, request: CompletionRequest) -> Completion:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def generate(
    tmp_path: Path, llm: OpenAICompatibleLLM | SilentLLM, log_sink: io.StringIO
) -> tuple[int, list[dict[str, object]], dict[str, object]]:
    settings = Settings(data_dir=tmp_path / "data", llm_timeout_s=0.2)
    async with (
        rest_server(tmp_path, settings=settings, llm_fallback=llm) as server,
        server.client(Scope.WRITE) as http,
    ):
        response = await http.post("/v1/tools/generate_context_stack", json={"objective": "x"})
        assert isinstance(server.metrics, RecordingMetrics)
        calls = [dict(call) for call in server.metrics.named("record_llm_call")]
    lines = [json.loads(line) for line in log_sink.getvalue().splitlines()]
    [line] = [
        line for line in lines if line.get("method") == "POST /v1/tools/generate_context_stack"
    ]
    return response.status_code, calls, line


async def test_a_failed_call_is_labelled_with_the_configured_model(
    tmp_path: Path, fake_llm_server: FakeLLMServer, log_sink: io.StringIO
) -> None:
    fake_llm_server.mode = "error"
    llm = OpenAICompatibleLLM(fake_llm_server.base_url, CONFIGURED)
    status, calls, line = await generate(tmp_path, llm, log_sink)
    assert status == 502
    assert [(c["model"], c["error_type"]) for c in calls] == [(CONFIGURED, "LLMResponseError")]
    assert line["llm_model"] == CONFIGURED


async def test_a_timeout_is_labelled_with_the_configured_model(
    tmp_path: Path, log_sink: io.StringIO
) -> None:
    status, calls, line = await generate(tmp_path, SilentLLM(), log_sink)
    assert status == 504
    assert [(c["model"], c["error_type"]) for c in calls] == [(CONFIGURED, "timeout")]
    assert line["llm_model"] == CONFIGURED


async def test_a_success_is_labelled_with_the_configured_model_and_logs_the_answering_one(
    tmp_path: Path, fake_llm_server: FakeLLMServer, log_sink: io.StringIO, seed_text: str
) -> None:
    fake_llm_server.answers = [seed_text]
    llm = OpenAICompatibleLLM(fake_llm_server.base_url, CONFIGURED)
    status, calls, line = await generate(tmp_path, llm, log_sink)
    assert status == 200
    assert [(c["model"], c["error_type"]) for c in calls] == [(CONFIGURED, None)]
    assert line["llm_model"] == fake_llm_server.model
