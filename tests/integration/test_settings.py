"""Settings from the environment: defaults, conversions, and errors naming the variable."""

from pathlib import Path

import pytest

from ctxfy.core.errors import ConfigurationError
from ctxfy.settings import Secret, Settings, is_loopback


def test_defaults_bind_to_loopback_over_http() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.transport) == ("127.0.0.1", 8000, "http")
    assert settings.mcp_path == "/mcp"
    assert settings.llm_fallback_configured is False


def test_every_variable_is_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "CTXFY_HOST": "0.0.0.0",
            "CTXFY_PORT": "9000",
            "CTXFY_TRANSPORT": "stdio",
            "CTXFY_MCP_PATH": "/api/mcp",
            "CTXFY_STATELESS_HTTP": "true",
            "CTXFY_JSON_RESPONSE": "1",
            "CTXFY_PROMPTS_DIR": str(tmp_path),
            "CTXFY_DATA_DIR": str(tmp_path / "data"),
            "CTXFY_LLM_BASE_URL": "http://127.0.0.1:1/v1/",
            "CTXFY_LLM_MODEL": "m",
            "CTXFY_LLM_API_KEY": "sk-secret",
            "CTXFY_LLM_TIMEOUT_S": "2.5",
            "CTXFY_LLM_MAX_TOKENS": "100",
        }
    )
    assert settings.port == 9000
    assert settings.transport == "stdio"
    assert settings.stateless_http
    assert settings.json_response
    assert settings.prompts_dir == tmp_path
    assert settings.llm_base_url == "http://127.0.0.1:1/v1"
    assert settings.llm_api_key == Secret("sk-secret")
    assert settings.llm_timeout_s == 2.5
    assert settings.llm_fallback_configured


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("CTXFY_PORT", "http", "invalid literal"),
        ("CTXFY_PORT", "70000", "0 to 65535"),
        ("CTXFY_TRANSPORT", "sse", "'http' or 'stdio'"),
        ("CTXFY_STATELESS_HTTP", "perhaps", "true/false"),
        ("CTXFY_LLM_TIMEOUT_S", "0", "greater than 0"),
        ("CTXFY_LLM_MAX_TOKENS", "-1", "at least 1"),
        ("CTXFY_LLM_BASE_URL", "ftp://x", "http:// or https://"),
        ("CTXFY_PROMPTS_DIR", "/definitely/not/here", "not an existing directory"),
        ("CTXFY_MCP_PATH", "mcp", "must start with '/'"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_rule(name: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({name: value})
    assert str(info.value).startswith(f"{name}={value!r} is invalid")
    assert rule in str(info.value)


def test_llm_fallback_needs_url_and_model_together() -> None:
    with pytest.raises(ConfigurationError, match="set both or neither"):
        Settings.from_env({"CTXFY_LLM_MODEL": "m"})


def test_secrets_never_show_in_repr() -> None:
    settings = Settings.from_env({"CTXFY_LLM_API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.llm_api_key)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected
