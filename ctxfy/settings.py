"""ctxfy's settings, read once from the environment (``CTXFY_`` prefix).

Every variable is listed with its default in ``docs/configuration.md``. A bad value fails
start-up with one :class:`~ctxfy.core.errors.ConfigurationError` naming the variable. How
each value is parsed, and which ``CTXFY_`` names are known, is in :mod:`ctxfy.settings_env`.
"""

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import attrs
import platformdirs

from ctxfy.core.access import is_loopback
from ctxfy.core.durations import parse_duration
from ctxfy.core.errors import ConfigurationError
from ctxfy.core.telemetry import ArgumentLogging, parse_argument_logging
from ctxfy.settings_env import (
    VARIABLES,
    DocsAccess,
    FlagOverlay,
    InjectionPolicy,
    LogFormat,
    LogLevel,
    Transport,
    parse_bool,
    parse_csv,
    parse_directory,
    parse_docs_access,
    parse_injection_policy,
    parse_log_format,
    parse_log_level,
    parse_mcp_path,
    parse_port,
    parse_positive_float,
    parse_positive_int,
    parse_store_url,
    parse_transport,
    parse_url,
    read_variable,
    unknown_variables,
)

# FlagOverlay, VARIABLES and unknown_variables live in ctxfy.settings_env; they stay
# importable from here, where the CLI and the tests have always found them.
__all__ = [
    "VARIABLES",
    "FlagOverlay",
    "Secret",
    "Settings",
    "default_data_dir",
    "key_store_url_from_env",
    "unknown_variables",
]


@attrs.frozen(repr=False)
class Secret:
    """A string that never shows itself in ``repr``, ``str`` or logs.

    Attributes:
        value: The secret text; read it only where it is used.
    """

    value: str

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def _absolute(path: Path | str) -> Path:
    # Resolved once, when the settings are made: the key store URL, the bootstrap key file
    # and ``ctxfy keys`` must all name the same directory whatever the working directory.
    return Path(path).expanduser().resolve()


def default_data_dir() -> Path:
    """Return the default data directory (the user's data directory for ctxfy)."""
    return Path(platformdirs.user_data_dir("ctxfy", appauthor=False))


@attrs.frozen
class Settings:
    """Everything ctxfy can be configured with.

    Build it with :meth:`from_env`, or directly in code and tests.

    Attributes:
        host: Address to bind (``CTXFY_HOST``); loopback by default.
        port: TCP port (``CTXFY_PORT``).
        transport: ``http`` (streamable HTTP) or ``stdio`` (``CTXFY_TRANSPORT``).
        mcp_path: Path of the MCP endpoint (``CTXFY_MCP_PATH``).
        stateless_http: Serve MCP without sessions (``CTXFY_STATELESS_HTTP``); the client's
            LLM cannot be reached then, only the server-side fallback.
        json_response: Answer MCP POSTs with JSON instead of SSE (``CTXFY_JSON_RESPONSE``).
        prompts_dir: Directory of user prompt files (``CTXFY_PROMPTS_DIR``).
        data_dir: Where ctxfy keeps its data (``CTXFY_DATA_DIR``); made absolute against
            the working directory when the settings are built.
        llm_base_url: OpenAI-compatible server for the LLM fallback (``CTXFY_LLM_BASE_URL``).
        llm_model: Model name for the fallback (``CTXFY_LLM_MODEL``).
        llm_api_key: API key for the fallback (``CTXFY_LLM_API_KEY``), never logged.
        llm_timeout_s: Timeout of one LLM call in seconds (``CTXFY_LLM_TIMEOUT_S``).
        llm_max_tokens: Upper bound on one LLM answer (``CTXFY_LLM_MAX_TOKENS``).
        shutdown_grace_s: Time in-flight requests get to finish after SIGTERM
            (``CTXFY_SHUTDOWN_GRACE_S``).
        auth: Require API keys on ``/mcp`` and ``/v1`` (``CTXFY_AUTH``; off only on loopback).
        key_store: Key store URL, ``sqlite:///path`` or ``redis://host:port/db``
            (``CTXFY_KEY_STORE``); default SQLite in ``data_dir``.
        key_max_ttl: Longest lifetime a key may have; makes expiry mandatory
            (``CTXFY_KEY_MAX_TTL``, e.g. ``90d``).
        bootstrap: Create a bootstrap admin key on an empty store even on a non-loopback
            address (``CTXFY_BOOTSTRAP``).
        rate_limit: Default per-key limit (``CTXFY_RATE_LIMIT``, e.g. ``120/minute``).
        rate_limit_storage: ``memory://`` or ``redis://...`` (``CTXFY_RATE_LIMIT_STORAGE``).
        allowed_hosts: Extra ``Host`` values accepted on ``/mcp`` (``CTXFY_ALLOWED_HOSTS``).
        allowed_origins: ``Origin`` values accepted on ``/mcp`` (``CTXFY_ALLOWED_ORIGINS``).
        cors_origins: Origins allowed by CORS; CORS is off when empty (``CTXFY_CORS_ORIGINS``).
        hsts_max_age: Send ``Strict-Transport-Security`` with this max-age
            (``CTXFY_HSTS_MAX_AGE``), for deployments behind TLS.
        max_body_bytes: Largest request body accepted, in bytes; larger ones get ``413``
            (``CTXFY_MAX_BODY_BYTES``).
        body_timeout_s: Time a client has to send a whole request body, in seconds;
            slower ones get ``408`` (``CTXFY_BODY_TIMEOUT_S``).
        header_timeout_s: Time a client has to send a request's headers, in seconds;
            slower connections are closed with ``408`` (``CTXFY_HEADER_TIMEOUT_S``).
        log_level: Minimum log level (``CTXFY_LOG_LEVEL``).
        log_format: ``json`` or ``console`` (``CTXFY_LOG_FORMAT``).
        log_arguments: ``off``, ``sizes`` or ``full`` (``CTXFY_LOG_ARGUMENTS``).
        log_health_checks: Log ``/health`` and ``/ready`` at INFO instead of DEBUG
            (``CTXFY_LOG_HEALTH_CHECKS``).
        docs_access: Who may read ``/openapi.json``: ``auto`` (anyone on loopback or with
            auth off, a read key otherwise), ``public`` or ``key`` (``CTXFY_DOCS_PUBLIC``:
            ``auto``, ``true`` or ``false``).
        metrics_public: Serve ``/metrics`` without a key (``CTXFY_METRICS_PUBLIC``, default
            true: Prometheus targets are usually scraped on a private network; set false to
            require a ``read`` key, sent by Prometheus as ``authorization: credentials``).
        injection_policy: What to do with arguments that look like prompt injection:
            ``flag`` (audit, count and serve, segregated) or ``reject``
            (``CTXFY_INJECTION_POLICY``).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    transport: Transport = "http"
    mcp_path: str = "/mcp"
    stateless_http: bool = False
    json_response: bool = False
    prompts_dir: Path | None = None
    data_dir: Path = attrs.field(factory=default_data_dir, converter=_absolute)
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: Secret | None = None
    llm_timeout_s: float = 60.0
    llm_max_tokens: int = 4096
    shutdown_grace_s: float = 10.0
    auth: bool = True
    key_store: str | None = None
    key_max_ttl: timedelta | None = None
    bootstrap: bool = False
    rate_limit: str = "120/minute"
    rate_limit_storage: str = "memory://"
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    hsts_max_age: int | None = None
    # The adapters' own defaults (body_limit, http_timeouts), repeated so that reading
    # settings imports no HTTP stack; a test keeps them equal.
    max_body_bytes: int = 4 * 1024 * 1024
    body_timeout_s: float = 10.0
    header_timeout_s: float = 10.0
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "json"
    log_arguments: ArgumentLogging = "off"
    log_health_checks: bool = False
    injection_policy: InjectionPolicy = "flag"
    docs_access: DocsAccess = "auto"
    metrics_public: bool = True

    @property
    def docs_public(self) -> bool:
        """Whether ``/openapi.json`` is served without a key (see ``docs_access``)."""
        if self.docs_access == "auto":
            return not self.auth or is_loopback(self.host)
        return self.docs_access == "public"

    @property
    def key_store_url(self) -> str:
        """The key store URL, defaulting to SQLite in the data directory."""
        # The same URL as ``ctxfy keys`` builds: ``sqlite://`` plus the absolute path.
        return self.key_store or f"sqlite://{self.data_dir / 'ctxfy.db'}"

    @property
    def llm_fallback_configured(self) -> bool:
        """Whether the server-side LLM fallback has both a URL and a model."""
        return self.llm_base_url is not None and self.llm_model is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Settings":
        """Read settings from ``environ`` (usually ``os.environ``).

        Args:
            environ: The environment.

        Returns:
            The settings, with defaults for every variable not set.

        Raises:
            ConfigurationError: A variable has an invalid value; the message names it.
        """
        defaults = cls()
        llm_key = environ.get("CTXFY_LLM_API_KEY", "").strip()
        settings = cls(
            host=read_variable(environ, "CTXFY_HOST", str, defaults.host),
            port=read_variable(environ, "CTXFY_PORT", parse_port, defaults.port),
            transport=read_variable(
                environ, "CTXFY_TRANSPORT", parse_transport, defaults.transport
            ),
            mcp_path=read_variable(environ, "CTXFY_MCP_PATH", parse_mcp_path, defaults.mcp_path),
            stateless_http=read_variable(environ, "CTXFY_STATELESS_HTTP", parse_bool, False),
            json_response=read_variable(environ, "CTXFY_JSON_RESPONSE", parse_bool, False),
            prompts_dir=read_variable(environ, "CTXFY_PROMPTS_DIR", parse_directory, None),
            data_dir=read_variable(environ, "CTXFY_DATA_DIR", Path, defaults.data_dir),
            llm_base_url=read_variable(environ, "CTXFY_LLM_BASE_URL", parse_url, None),
            llm_model=read_variable(environ, "CTXFY_LLM_MODEL", str, None),
            llm_api_key=Secret(llm_key) if llm_key else None,
            llm_timeout_s=read_variable(environ, "CTXFY_LLM_TIMEOUT_S", parse_positive_float, 60.0),
            llm_max_tokens=read_variable(environ, "CTXFY_LLM_MAX_TOKENS", parse_positive_int, 4096),
            shutdown_grace_s=read_variable(
                environ, "CTXFY_SHUTDOWN_GRACE_S", parse_positive_float, 10.0
            ),
            auth=read_variable(environ, "CTXFY_AUTH", parse_bool, True),
            key_store=read_variable(environ, "CTXFY_KEY_STORE", parse_store_url, None),
            key_max_ttl=read_variable(environ, "CTXFY_KEY_MAX_TTL", parse_duration, None),
            bootstrap=read_variable(environ, "CTXFY_BOOTSTRAP", parse_bool, False),
            rate_limit=read_variable(environ, "CTXFY_RATE_LIMIT", str, defaults.rate_limit),
            rate_limit_storage=read_variable(
                environ, "CTXFY_RATE_LIMIT_STORAGE", str, defaults.rate_limit_storage
            ),
            allowed_hosts=read_variable(environ, "CTXFY_ALLOWED_HOSTS", parse_csv, ()),
            allowed_origins=read_variable(environ, "CTXFY_ALLOWED_ORIGINS", parse_csv, ()),
            cors_origins=read_variable(environ, "CTXFY_CORS_ORIGINS", parse_csv, ()),
            hsts_max_age=read_variable(environ, "CTXFY_HSTS_MAX_AGE", parse_positive_int, None),
            max_body_bytes=read_variable(
                environ, "CTXFY_MAX_BODY_BYTES", parse_positive_int, defaults.max_body_bytes
            ),
            body_timeout_s=read_variable(
                environ, "CTXFY_BODY_TIMEOUT_S", parse_positive_float, defaults.body_timeout_s
            ),
            header_timeout_s=read_variable(
                environ, "CTXFY_HEADER_TIMEOUT_S", parse_positive_float, defaults.header_timeout_s
            ),
            log_level=read_variable(environ, "CTXFY_LOG_LEVEL", parse_log_level, "INFO"),
            log_format=read_variable(environ, "CTXFY_LOG_FORMAT", parse_log_format, "json"),
            log_arguments=read_variable(
                environ, "CTXFY_LOG_ARGUMENTS", parse_argument_logging, "off"
            ),
            log_health_checks=read_variable(environ, "CTXFY_LOG_HEALTH_CHECKS", parse_bool, False),
            injection_policy=read_variable(
                environ, "CTXFY_INJECTION_POLICY", parse_injection_policy, "flag"
            ),
            docs_access=read_variable(environ, "CTXFY_DOCS_PUBLIC", parse_docs_access, "auto"),
            metrics_public=read_variable(environ, "CTXFY_METRICS_PUBLIC", parse_bool, True),
        )
        if (settings.llm_base_url is None) != (settings.llm_model is None):
            raise ConfigurationError(
                "CTXFY_LLM_BASE_URL and CTXFY_LLM_MODEL configure the LLM fallback together: "
                "set both or neither"
            )
        return settings


def key_store_url_from_env(environ: Mapping[str, str]) -> str:
    """Return the key store URL ``Settings.from_env(environ)`` would use.

    It reads only ``CTXFY_KEY_STORE`` and ``CTXFY_DATA_DIR``, with the same rules as the
    server (blank means unset, ``~`` is expanded, a relative directory is made absolute),
    so that ``ctxfy keys`` and the server open the same store.

    Args:
        environ: The environment.

    Returns:
        The ``sqlite:///...`` or ``redis://...`` URL.

    Raises:
        ConfigurationError: ``CTXFY_KEY_STORE`` is not a key store URL.
    """
    return Settings(
        data_dir=read_variable(environ, "CTXFY_DATA_DIR", Path, default_data_dir()),
        key_store=read_variable(environ, "CTXFY_KEY_STORE", parse_store_url, None),
    ).key_store_url
