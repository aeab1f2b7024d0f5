"""ctxfy's settings, read once from the environment (``CTXFY_`` prefix).

Every variable is listed with its default in ``docs/configuration.md``. A bad value fails
start-up with one :class:`~ctxfy.core.errors.ConfigurationError` naming the variable.
"""

import difflib
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Literal, TypeVar

import attrs
import platformdirs

from ctxfy.core.access import is_loopback
from ctxfy.core.durations import parse_duration
from ctxfy.core.errors import ConfigurationError, CtxfyError
from ctxfy.core.telemetry import ArgumentLogging, parse_argument_logging

_T = TypeVar("_T")

Transport = Literal["http", "stdio"]
LogFormat = Literal["json", "console"]
InjectionPolicy = Literal["flag", "reject"]
DocsAccess = Literal["auto", "public", "key"]
LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
_LOG_LEVELS: tuple[LogLevel, ...] = (
    "TRACE",
    "DEBUG",
    "INFO",
    "SUCCESS",
    "WARNING",
    "ERROR",
    "CRITICAL",
)


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


def _parse(environ: Mapping[str, str], name: str, convert: Callable[[str], _T], default: _T) -> _T:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return convert(raw.strip())
    except (ValueError, TypeError, CtxfyError) as exc:
        raise ConfigurationError(f"{_named(environ, name, raw)} is invalid: {exc}") from None


def _named(environ: Mapping[str, str], name: str, raw: str) -> str:
    """Name a setting in an error as the user gave it: ``--port '1'`` or ``CTXFY_PORT='1'``."""
    if isinstance(environ, FlagOverlay) and name in environ.flags:
        return f"{environ.flags[name]} {raw!r}"
    return f"{name}={raw!r}"


class FlagOverlay(Mapping[str, str]):
    """The environment with command-line flags laid over it, for :meth:`Settings.from_env`.

    A flag's value goes through the same checks as its variable, and an error names the
    flag (``--port '99999' is invalid: ...``) instead of the variable.

    Args:
        environ: The environment underneath.
        flags: Variable name → ``(flag, value)`` for every flag given, e.g.
            ``{"CTXFY_PORT": ("--port", "9000")}``.

    Example:
        ```python
        overlay = FlagOverlay(os.environ, {"CTXFY_PORT": ("--port", "9000")})
        assert Settings.from_env(overlay).port == 9000
        ```
    """

    def __init__(self, environ: Mapping[str, str], flags: Mapping[str, tuple[str, str]]) -> None:
        self._values = {**environ, **{name: value for name, (_, value) in flags.items()}}
        self.flags = {name: flag for name, (flag, _) in flags.items()}

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError("a port is a whole number from 0 to 65535")
    return port


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a number greater than 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


def _transport(text: str) -> Transport:
    if text == "http":
        return "http"
    if text == "stdio":
        return "stdio"
    raise ValueError("must be 'http' or 'stdio'")


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be one of true/false, 1/0, yes/no, on/off")


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return text.rstrip("/")


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
            host=_parse(environ, "CTXFY_HOST", str, defaults.host),
            port=_parse(environ, "CTXFY_PORT", _port, defaults.port),
            transport=_parse(environ, "CTXFY_TRANSPORT", _transport, defaults.transport),
            mcp_path=_parse(environ, "CTXFY_MCP_PATH", _path, defaults.mcp_path),
            stateless_http=_parse(environ, "CTXFY_STATELESS_HTTP", _bool, False),
            json_response=_parse(environ, "CTXFY_JSON_RESPONSE", _bool, False),
            prompts_dir=_parse(environ, "CTXFY_PROMPTS_DIR", _directory, None),
            data_dir=_parse(environ, "CTXFY_DATA_DIR", Path, defaults.data_dir),
            llm_base_url=_parse(environ, "CTXFY_LLM_BASE_URL", _url, None),
            llm_model=_parse(environ, "CTXFY_LLM_MODEL", str, None),
            llm_api_key=Secret(llm_key) if llm_key else None,
            llm_timeout_s=_parse(environ, "CTXFY_LLM_TIMEOUT_S", _positive_float, 60.0),
            llm_max_tokens=_parse(environ, "CTXFY_LLM_MAX_TOKENS", _positive_int, 4096),
            shutdown_grace_s=_parse(environ, "CTXFY_SHUTDOWN_GRACE_S", _positive_float, 10.0),
            auth=_parse(environ, "CTXFY_AUTH", _bool, True),
            key_store=_parse(environ, "CTXFY_KEY_STORE", _store_url, None),
            key_max_ttl=_parse(environ, "CTXFY_KEY_MAX_TTL", parse_duration, None),
            bootstrap=_parse(environ, "CTXFY_BOOTSTRAP", _bool, False),
            rate_limit=_parse(environ, "CTXFY_RATE_LIMIT", str, defaults.rate_limit),
            rate_limit_storage=_parse(
                environ, "CTXFY_RATE_LIMIT_STORAGE", str, defaults.rate_limit_storage
            ),
            allowed_hosts=_parse(environ, "CTXFY_ALLOWED_HOSTS", _csv, ()),
            allowed_origins=_parse(environ, "CTXFY_ALLOWED_ORIGINS", _csv, ()),
            cors_origins=_parse(environ, "CTXFY_CORS_ORIGINS", _csv, ()),
            hsts_max_age=_parse(environ, "CTXFY_HSTS_MAX_AGE", _positive_int, None),
            max_body_bytes=_parse(
                environ, "CTXFY_MAX_BODY_BYTES", _positive_int, defaults.max_body_bytes
            ),
            body_timeout_s=_parse(
                environ, "CTXFY_BODY_TIMEOUT_S", _positive_float, defaults.body_timeout_s
            ),
            header_timeout_s=_parse(
                environ, "CTXFY_HEADER_TIMEOUT_S", _positive_float, defaults.header_timeout_s
            ),
            log_level=_parse(environ, "CTXFY_LOG_LEVEL", _log_level, "INFO"),
            log_format=_parse(environ, "CTXFY_LOG_FORMAT", _log_format, "json"),
            log_arguments=_parse(environ, "CTXFY_LOG_ARGUMENTS", parse_argument_logging, "off"),
            log_health_checks=_parse(environ, "CTXFY_LOG_HEALTH_CHECKS", _bool, False),
            injection_policy=_parse(environ, "CTXFY_INJECTION_POLICY", _policy, "flag"),
            docs_access=_parse(environ, "CTXFY_DOCS_PUBLIC", _docs_access, "auto"),
            metrics_public=_parse(environ, "CTXFY_METRICS_PUBLIC", _bool, True),
        )
        if (settings.llm_base_url is None) != (settings.llm_model is None):
            raise ConfigurationError(
                "CTXFY_LLM_BASE_URL and CTXFY_LLM_MODEL configure the LLM fallback together: "
                "set both or neither"
            )
        return settings


#: Every variable :meth:`Settings.from_env` reads (a test keeps this list exact).
VARIABLES: frozenset[str] = frozenset(
    {
        "CTXFY_ALLOWED_HOSTS",
        "CTXFY_ALLOWED_ORIGINS",
        "CTXFY_AUTH",
        "CTXFY_BODY_TIMEOUT_S",
        "CTXFY_BOOTSTRAP",
        "CTXFY_CORS_ORIGINS",
        "CTXFY_DATA_DIR",
        "CTXFY_DOCS_PUBLIC",
        "CTXFY_HEADER_TIMEOUT_S",
        "CTXFY_HOST",
        "CTXFY_HSTS_MAX_AGE",
        "CTXFY_INJECTION_POLICY",
        "CTXFY_JSON_RESPONSE",
        "CTXFY_KEY_MAX_TTL",
        "CTXFY_KEY_STORE",
        "CTXFY_LLM_API_KEY",
        "CTXFY_LLM_BASE_URL",
        "CTXFY_LLM_MAX_TOKENS",
        "CTXFY_LLM_MODEL",
        "CTXFY_LLM_TIMEOUT_S",
        "CTXFY_LOG_ARGUMENTS",
        "CTXFY_LOG_FORMAT",
        "CTXFY_LOG_HEALTH_CHECKS",
        "CTXFY_LOG_LEVEL",
        "CTXFY_MAX_BODY_BYTES",
        "CTXFY_MCP_PATH",
        "CTXFY_METRICS_PUBLIC",
        "CTXFY_PORT",
        "CTXFY_PROMPTS_DIR",
        "CTXFY_RATE_LIMIT",
        "CTXFY_RATE_LIMIT_STORAGE",
        "CTXFY_SHUTDOWN_GRACE_S",
        "CTXFY_STATELESS_HTTP",
        "CTXFY_TRANSPORT",
    }
)

# CTXFY_ names (without the prefix; glob patterns) that belong to ctxfy's other tools and
# docs, not to the server: the container's health check, the shell variables of the
# quickstart and examples, CI, tests and scripts/container-smoke.sh. The server reads none
# of them, so docs/configuration.md does not list them.
_OTHER_TOOLS = (
    "HEALTHCHECK_TIMEOUT_S",
    "KEY",
    "API_KEY",
    "URL",
    "CI_CONTAINER",
    "RELIABILITY_LOAD_S",
    "IMAGE",
    "VERSION",
    "SMOKE_*",
)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Return a warning for every ``CTXFY_`` variable that ctxfy does not read.

    A misspelt name (``CTXFY_LLM_TIMEOUT``) would otherwise be ignored without a word.
    Unknown names are reported, not refused, so that a newer deployment's variables do
    not stop an older ctxfy. Nothing is printed here: the caller decides where to.

    Args:
        environ: The environment.

    Returns:
        One message per unknown name, sorted, with the closest known name when one is near.
    """
    warnings = []
    for name in sorted(environ):
        if not name.startswith("CTXFY_") or name in VARIABLES:
            continue
        suffix = name.removeprefix("CTXFY_")
        if any(fnmatch.fnmatchcase(suffix, pattern) for pattern in _OTHER_TOOLS):
            continue
        close = difflib.get_close_matches(name, sorted(VARIABLES), n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"{name} is not a ctxfy setting{hint}; it is ignored")
    return warnings


def _path(text: str) -> str:
    if not text.startswith("/") or text.endswith("/") or len(text) < 2:
        raise ValueError("must start with '/' and not end with '/', e.g. /mcp")
    return text


def _directory(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ValueError("is not an existing directory")
    return path


def _store_url(text: str) -> str:
    if not text.startswith(("sqlite:///", "redis://", "rediss://")):
        raise ValueError("must be a sqlite:///path or redis://host:port/db URL")
    return text


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _log_level(text: str) -> LogLevel:
    for level in _LOG_LEVELS:
        if text.upper() == level:
            return level
    raise ValueError("must be one of " + ", ".join(_LOG_LEVELS))


def _log_format(text: str) -> LogFormat:
    if text == "json":
        return "json"
    if text == "console":
        return "console"
    raise ValueError("must be 'json' or 'console'")


def _policy(text: str) -> InjectionPolicy:
    if text == "flag":
        return "flag"
    if text == "reject":
        return "reject"
    raise ValueError("must be 'flag' or 'reject'")


def _docs_access(text: str) -> DocsAccess:
    if text.lower() == "auto":
        return "auto"
    return "public" if _bool(text) else "key"
