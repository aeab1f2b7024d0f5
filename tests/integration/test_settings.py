"""Settings from the environment: defaults, conversions, and errors naming the variable."""

from pathlib import Path
from typing import Any

import pytest

from ctxfy.adapters.keystores import default_key_store_url
from ctxfy.core.errors import ConfigurationError
from ctxfy.settings import VARIABLES, Secret, Settings, unknown_variables


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


def test_access_and_logging_variables_are_read() -> None:
    settings = Settings.from_env(
        {
            "CTXFY_AUTH": "off",
            "CTXFY_KEY_STORE": "redis://127.0.0.1:6379/0",
            "CTXFY_KEY_MAX_TTL": "90d",
            "CTXFY_RATE_LIMIT": "10/second",
            "CTXFY_ALLOWED_ORIGINS": "https://a.example, https://b.example",
            "CTXFY_LOG_LEVEL": "debug",
            "CTXFY_LOG_FORMAT": "console",
            "CTXFY_LOG_ARGUMENTS": "sizes",
        }
    )
    assert settings.auth is False
    assert settings.key_store_url == "redis://127.0.0.1:6379/0"
    assert settings.key_max_ttl is not None
    assert settings.key_max_ttl.days == 90
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert (settings.log_level, settings.log_format, settings.log_arguments) == (
        "DEBUG",
        "console",
        "sizes",
    )


def test_the_key_store_defaults_to_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({"CTXFY_DATA_DIR": str(tmp_path)})
    assert settings.key_store_url == f"sqlite://{tmp_path.resolve() / 'ctxfy.db'}"


def test_a_relative_data_dir_is_made_absolute_once_for_every_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"CTXFY_DATA_DIR": "reldata"})
    database = tmp_path.resolve() / "reldata" / "ctxfy.db"
    assert settings.data_dir == tmp_path.resolve() / "reldata"
    assert settings.key_store_url == f"sqlite://{database}"
    # ``ctxfy keys`` builds its URL from the same variable: both name one file.
    assert settings.key_store_url == default_key_store_url(Path("reldata"))
    assert Settings(data_dir=Path("reldata")).data_dir == settings.data_dir


class _RecordingEnviron(dict[str, str]):
    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def test_the_list_of_known_variables_is_what_from_env_reads() -> None:
    environ = _RecordingEnviron()
    Settings.from_env(environ)
    assert environ.asked == VARIABLES


def test_unknown_ctxfy_variables_are_reported_with_the_closest_name() -> None:
    environ = {
        "CTXFY_LLM_TIMEOUT": "5",
        "CTXFY_SOMETHING": "1",
        "CTXFY_PORT": "9000",
        "CTXFY_HEALTHCHECK_TIMEOUT_S": "3",  # the container health check's own variable
        "CTXFY_KEY": "ctxfy_...",  # the quickstart's shell variable
        "HOME": "/root",
    }
    assert unknown_variables(environ) == [
        "CTXFY_LLM_TIMEOUT is not a ctxfy setting (did you mean CTXFY_LLM_TIMEOUT_S?); "
        "it is ignored",
        "CTXFY_SOMETHING is not a ctxfy setting; it is ignored",
    ]
    assert Settings.from_env(environ).llm_timeout_s == 60.0  # a warning, not a failure


def test_kubernetes_service_links_are_not_reported() -> None:
    """The variables Kubernetes injects for a Service named ctxfy are not typos."""
    environ = {
        "CTXFY_SERVICE_HOST": "10.96.0.12",
        "CTXFY_SERVICE_PORT": "8000",
        "CTXFY_SERVICE_PORT_HTTP": "8000",
        "CTXFY_PORT_8000_TCP": "tcp://10.96.0.12:8000",
        "CTXFY_PORT_8000_TCP_PROTO": "tcp",
        "CTXFY_PORT_8000_TCP_PORT": "8000",
        "CTXFY_PORT_8000_TCP_ADDR": "10.96.0.12",
        "CTXFY_PORTS": "1",
    }
    assert unknown_variables(environ) == [
        "CTXFY_PORTS is not a ctxfy setting (did you mean CTXFY_PORT?); it is ignored"
    ]


def test_a_service_link_in_ctxfy_port_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"CTXFY_PORT": "tcp://10.96.0.12:8000"})
    assert "CTXFY_PORT" in str(info.value)
    assert "enableServiceLinks: false" in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("CTXFY_KEY_STORE", "postgres://x", "sqlite:///path or redis://"),
        ("CTXFY_KEY_MAX_TTL", "forever", "invalid duration"),
        ("CTXFY_LOG_LEVEL", "loud", "must be one of"),
        ("CTXFY_LOG_FORMAT", "xml", "'json' or 'console'"),
        ("CTXFY_LOG_ARGUMENTS", "maybe", "expected off, on, sizes or full"),
    ],
)
def test_bad_access_and_logging_values_name_the_variable(name: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({name: value})
    assert str(info.value).startswith(f"{name}={value!r} is invalid")
    assert rule in str(info.value)


@pytest.mark.parametrize(
    ("environ", "public"),
    [
        ({}, True),
        ({"CTXFY_HOST": "0.0.0.0"}, False),
        ({"CTXFY_HOST": "0.0.0.0", "CTXFY_AUTH": "off"}, True),
        ({"CTXFY_HOST": "0.0.0.0", "CTXFY_DOCS_PUBLIC": "true"}, True),
        ({"CTXFY_DOCS_PUBLIC": "false"}, False),
    ],
)
def test_docs_are_public_on_loopback_unless_configured(
    environ: dict[str, str], public: bool
) -> None:
    assert Settings.from_env(environ).docs_public is public


def test_injection_policy_and_docs_access_reject_unknown_words() -> None:
    with pytest.raises(ConfigurationError, match="CTXFY_INJECTION_POLICY='block'"):
        Settings.from_env({"CTXFY_INJECTION_POLICY": "block"})
    with pytest.raises(ConfigurationError, match="CTXFY_DOCS_PUBLIC='sometimes'"):
        Settings.from_env({"CTXFY_DOCS_PUBLIC": "sometimes"})
