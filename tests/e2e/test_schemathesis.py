"""Schemathesis against the real server's ``/openapi.json``, with an admin key.

The admin key reaches every operation, the ``/v1/keys`` routes included, so their
success answers are checked against the document as well as their refusals.

Every documented operation is exercised with generated requests (valid and invalid): no
answer may be a 5xx, use an undocumented status, content type or header, or violate its
declared schema. The run is bounded (examples per operation, fixed seed) to stay fast.
``positive_data_acceptance`` is not checked: the character policy (control and bidi
characters, blank required text) refuses some strings that JSON Schema cannot exclude.
"""

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import FakeLLMServer
from tests.e2e.ctxfy_process import ctxfy_process

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = "15"
SEED = "20260101"
RUN_SCHEMATHESIS = "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"


def test_every_operation_conforms_to_the_document(
    tmp_path: Path, unused_port: int, fake_llm_server: FakeLLMServer, seed_text: str
) -> None:
    # The LLM tool answers 200 through the fallback instead of its documented 501.
    fake_llm_server.answers = [seed_text]
    env = {
        "CTXFY_RATE_LIMIT": "1000000/minute",
        "CTXFY_LLM_BASE_URL": fake_llm_server.base_url,
        "CTXFY_LLM_MODEL": "fake-model",
        "CTXFY_LOG_LEVEL": "INFO",  # the audit lines show which key routes succeeded
    }
    with ctxfy_process(tmp_path, unused_port, **env) as server:
        key = server.create_key("admin")  # /v1/keys answers 2xx too, checked against its schema
        spec = httpx.get(f"{server.base}/openapi.json", timeout=10).json()
        operations = sum(len(item) for item in spec["paths"].values())
        workdir = tmp_path / "schemathesis"
        workdir.mkdir()
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                RUN_SCHEMATHESIS,
                "run",
                f"{server.base}/openapi.json",
                "--header",
                f"Authorization: Bearer {key}",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                SEED,
                "--workers",
                "2",
                "--request-timeout",
                "30",
                "--output-truncate",
                "false",
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        log = server.log.read_text(errors="replace")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20_000:]
    selected = re.search(r"Selected:\s+(\d+)/(\d+)", output)
    tested = re.search(r"Tested:\s+(\d+)", output)
    assert selected is not None, output[-5000:]
    assert tested is not None, output[-5000:]
    # Every operation but the document's own URL, which Schemathesis leaves out.
    assert int(selected.group(1)) == int(selected.group(2)) == operations - 1
    assert int(tested.group(1)) == operations - 1, output[-5000:]
    assert '"event": "rest.error"' not in log, log[-5000:]  # no unexpected REST failure
    # Beyond the key this test made, Schemathesis created keys: /v1/keys answered 201.
    assert log.count('"event": "key.created"') > 2, log[-5000:]
