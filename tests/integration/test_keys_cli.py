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
        (["keys", "create", "--name", "x", "--scope", "read", "--expires-in", "soon"], {}, "30d"),
        (
            ["keys", "create", "--name", "x", "--scope", "read", "--expires-in", "30d"],
            {"CTXFY_KEY_MAX_TTL": "7d"},
            "CTXFY_KEY_MAX_TTL",
        ),
        (["keys", "list"], {"CTXFY_KEY_STORE": "mysql://db"}, "CTXFY_KEY_STORE"),
        (["keys", "revoke", "nosuchkey000"], {}, "no key"),
        (["keys", "rotate", "nosuchkey000", "--grace=-5m"], {}, "duration"),
    ],
)
def test_errors_exit_1_with_a_clear_message(
    environ: dict[str, str], argv: list[str], extra_env: dict[str, str], message: str
) -> None:
    code, out, err = run(argv, {**environ, **extra_env})
    assert code == 1
    assert message in err
    code, out, _ = run([*argv, "--json"], {**environ, **extra_env})
    assert code == 1
    assert message in json.loads(out)["error"]


def test_an_unknown_scope_is_a_usage_error(environ: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as info:
        run(["keys", "create", "--name", "x", "--scope", "root"], environ)
    assert info.value.code == 2


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
