"""``ctxfy keys ...`` against a temporary data directory (SQLite) and a real Redis."""

import argparse
import io
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ctxfy.cli_keys import register
from ctxfy.core.keys import ApiKey
from ctxfy.settings import Settings


def run(argv: list[str], environ: dict[str, str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="ctxfy")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code: int = args.handler(args, environ, out, err)
    return code, out.getvalue(), err.getvalue()


def run_json(argv: list[str], environ: dict[str, str]) -> Any:
    code, out, err = run([*argv, "--json"], environ)
    assert code == 0, err + out
    return json.loads(out)


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"CTXFY_DATA_DIR": str(tmp_path / "data")}


def test_create_prints_the_key_once_as_json(environ: dict[str, str], tmp_path: Path) -> None:
    created = run_json(["keys", "create", "--name", "ci", "--scope", "write"], environ)
    assert set(created) == {"key_id", "key", "name", "scope", "expires_at"}
    assert ApiKey.parse(created["key"]).key_id == created["key_id"]
    assert (created["name"], created["scope"], created["expires_at"]) == ("ci", "write", None)
    database = tmp_path / "data" / "ctxfy.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    listing = run_json(["keys", "list"], environ)
    assert [k["key_id"] for k in listing["keys"]] == [created["key_id"]]
    assert created["key"] not in json.dumps(listing)
    assert "sha256" not in json.dumps(listing)


def test_human_output_shows_the_key_with_a_warning_and_a_table(environ: dict[str, str]) -> None:
    code, out, _ = run(
        ["keys", "create", "--name", "laptop", "--scope", "read", "--expires-in", "30d"], environ
    )
    assert code == 0
    key_text = next(word for word in out.split() if word.startswith("ctxfy_"))
    key = ApiKey.parse(key_text)
    assert "shown only once" in out
    code, table, _ = run(["keys", "list"], environ)
    assert code == 0
    assert table.splitlines()[0].split()[:4] == ["KEY_ID", "NAME", "SCOPE", "STATUS"]
    assert key.key_id in table
    assert "active" in table
    assert key.secret not in table


def test_revoke_and_rotate(environ: dict[str, str]) -> None:
    first = run_json(["keys", "create", "--name", "a", "--scope", "admin"], environ)
    second = run_json(["keys", "create", "--name", "b", "--scope", "read"], environ)
    revoked = run_json(["keys", "revoke", first["key_id"]], environ)
    assert revoked["status"] == "revoked"
    rotated = run_json(["keys", "rotate", second["key_id"], "--grace", "15m"], environ)
    assert rotated["replaces"] == second["key_id"]
    assert rotated["name"] == "b"
    statuses = {k["key_id"]: k["status"] for k in run_json(["keys", "list"], environ)["keys"]}
    assert statuses == {
        first["key_id"]: "revoked",
        second["key_id"]: "rotating",
        rotated["key_id"]: "active",
    }
    code, out, err = run(["keys", "revoke", first["key_id"]], environ)
    assert code == 1
    assert "already revoked" in err
    assert out == ""


@pytest.mark.parametrize(
    ("argv", "extra_env", "message"),
    [
        (
            ["keys", "create", "--name", "x", "--scope", "read", "--expires-in", "30d"],
            {"CTXFY_KEY_MAX_TTL": "7d"},
            "CTXFY_KEY_MAX_TTL",
        ),
        (["keys", "revoke", "nosuchkey000"], {}, "no key"),
    ],
)
def test_refusals_exit_1_with_a_clear_message(
    environ: dict[str, str], argv: list[str], extra_env: dict[str, str], message: str
) -> None:
    code, out, err = run(argv, {**environ, **extra_env})
    assert code == 1
    assert message in err
    code, out, _ = run([*argv, "--json"], {**environ, **extra_env})
    assert code == 1
    assert message in json.loads(out)["error"]


@pytest.mark.parametrize(
    ("extra_env", "message"),
    [
        ({"CTXFY_KEY_STORE": "mysql://db"}, "CTXFY_KEY_STORE"),
        ({"CTXFY_KEY_MAX_TTL": "garbage"}, "CTXFY_KEY_MAX_TTL='garbage' is invalid"),
        ({"CTXFY_LOG_FORMAT": "xml"}, "CTXFY_LOG_FORMAT='xml' is invalid"),
        ({"CTXFY_LOG_LEVEL": "LOUD"}, "CTXFY_LOG_LEVEL='LOUD' is invalid"),
    ],
)
def test_configuration_errors_exit_2_naming_the_variable(
    environ: dict[str, str], extra_env: dict[str, str], message: str
) -> None:
    code, out, err = run(["keys", "list"], {**environ, **extra_env})
    assert (code, out) == (2, "")
    assert message in err
    code, out, _ = run(["keys", "list", "--json"], {**environ, **extra_env})
    assert code == 2
    error = json.loads(out)
    assert error["type"] == "ConfigurationError"
    assert message in error["error"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "--name", "x", "--scope", "root"], "argument --scope: invalid choice"),
        (["create", "--name", "x", "--scope", "read", "--expires-in", "soon"], "30d"),
        (["create", "--name", "x", "--scope", "read", "--expires-in", "0s"], "greater than zero"),
        (["create", "--name", "x", "--scope", "read", "--rate-limit", "0/minute"], "at least 1"),
        (
            ["create", "--name", "x", "--scope", "read", "--rate-limit", "1/minute;9/hour"],
            "exactly one",
        ),
        (["rotate", "nosuchkey000", "--grace=-5m"], "argument --grace: invalid duration"),
        (["rotate", "nosuchkey000", "--grace", "soon"], "argument --grace: invalid duration"),
    ],
)
def test_usage_errors_exit_2_and_are_json_with_json(
    environ: dict[str, str],
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        run(["keys", *argv], environ)
    assert info.value.code == 2
    text = capsys.readouterr()
    assert message in text.err
    assert text.out == ""
    with pytest.raises(SystemExit) as info:
        run(["keys", *argv, "--json"], environ)
    assert info.value.code == 2
    text = capsys.readouterr()
    error = json.loads(text.out)
    assert set(error) == {"error", "type"}
    assert error["type"] == "UsageError"
    assert message in error["error"]
    assert text.err == ""
    assert not (Path(environ["CTXFY_DATA_DIR"]) / "ctxfy.db").exists()  # nothing was done


def test_audit_events_are_json_lines_on_stderr_and_stdout_is_only_the_result(
    environ: dict[str, str],
) -> None:
    argv = ["keys", "create", "--name", "ci", "--scope", "read", "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "ctxfy", *argv],
        env={**environ, "PATH": "/usr/bin:/bin", "CTXFY_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert set(created) == {"key_id", "key", "name", "scope", "expires_at"}
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    [event] = [line for line in lines if line.get("event") == "key.created"]
    assert event["audit"] is True
    assert event["key_id"] == created["key_id"]
    assert event["outcome"] == "success"
    assert created["key"] not in result.stderr


@pytest.mark.redis
def test_keys_in_redis_are_shared_by_every_cli_run(redis_url: str) -> None:
    environ = {"CTXFY_KEY_STORE": redis_url}
    created = run_json(["keys", "create", "--name", "shared", "--scope", "read"], environ)
    listing = run_json(["keys", "list"], environ)
    assert [k["key_id"] for k in listing["keys"]] == [created["key_id"]]


def test_a_separate_process_sees_the_same_sqlite_store(environ: dict[str, str]) -> None:
    created = run_json(["keys", "create", "--name", "ci", "--scope", "read"], environ)
    script = (
        "import argparse, os, sys\n"
        "from ctxfy.cli_keys import register\n"
        "parser = argparse.ArgumentParser(prog='ctxfy')\n"
        "register(parser.add_subparsers(dest='command', required=True))\n"
        "args = parser.parse_args(sys.argv[1:])\n"
        "sys.exit(args.handler(args, os.environ))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "keys", "list", "--json"],
        env={**environ, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["keys"][0]["key_id"] == created["key_id"]
    assert created["key"] not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variables", "database"),
    [
        ({"CTXFY_DATA_DIR": "~/ctxfy-data"}, "ctxfy-data/ctxfy.db"),
        ({"CTXFY_DATA_DIR": "  ", "CTXFY_KEY_STORE": " "}, ".local/share/ctxfy/ctxfy.db"),
    ],
    ids=["tilde", "blank"],
)
def test_keys_and_the_server_open_the_same_store(
    variables: dict[str, str], database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``~`` and blank values mean for ``ctxfy keys`` what they mean for the server."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    run_json(["keys", "create", "--name", "ci", "--scope", "read"], variables)
    server_store = Settings.from_env(variables).key_store_url
    assert server_store == f"sqlite://{tmp_path / database}"
    assert (tmp_path / database).is_file()
    assert not (tmp_path / "~").exists()
