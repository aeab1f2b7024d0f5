"""ctxfy works on a plain install, without the optional ``redis`` extra.

Each test runs a fresh interpreter in which every ``redis`` import fails, as on a machine
where ``pip install ctxfy`` did not bring ``redis``.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# Installed before ctxfy is imported: any import of redis or redis.* fails.
_BLOCK_REDIS = """
import sys

class _NoRedis:
    def find_spec(self, name, path=None, target=None):
        if name == "redis" or name.startswith("redis."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

for _name in [n for n in sys.modules if n == "redis" or n.startswith("redis.")]:
    del sys.modules[_name]
sys.meta_path.insert(0, _NoRedis())
"""


def run_without_redis(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = _BLOCK_REDIS + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )


def test_the_blocker_really_hides_redis(tmp_path: Path) -> None:
    result = run_without_redis("import redis\n", tmp_path)
    assert result.returncode != 0
    assert "No module named 'redis'" in result.stderr


def test_server_builds_and_keys_cli_runs_without_redis(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = run_without_redis(
        f"""
        import json, sys
        import ctxfy
        from ctxfy import Settings, build_server
        from ctxfy.cli import main

        build_server(Settings())
        environ = {{"CTXFY_DATA_DIR": {str(data_dir)!r}}}
        code = main(["keys", "create", "--name", "plain", "--scope", "read", "--json"], environ)
        assert code == 0, code
        code = main(["keys", "list", "--json"], environ)
        assert code == 0, code
        assert "redis" not in sys.modules and "redis.asyncio" not in sys.modules
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    created, listing = (json.loads(line) for line in result.stdout.splitlines())
    assert [k["key_id"] for k in listing["keys"]] == [created["key_id"]]


def test_a_redis_rate_limit_url_without_redis_names_the_setting(tmp_path: Path) -> None:
    result = run_without_redis(
        """
        from ctxfy import Settings, build_server
        from ctxfy.core.errors import ConfigurationError

        try:
            build_server(Settings(rate_limit_storage="redis://127.0.0.1:6379/0"))
        except ConfigurationError as exc:
            print(exc)
        else:
            raise SystemExit("no error")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "CTXFY_RATE_LIMIT_STORAGE" in result.stdout
    assert "pip install 'ctxfy[redis]'" in result.stdout


def test_a_redis_key_store_url_without_redis_names_the_setting(tmp_path: Path) -> None:
    result = run_without_redis(
        """
        import sys
        from ctxfy.cli import main

        sys.exit(main(["keys", "list", "--json"], {"CTXFY_KEY_STORE": "redis://127.0.0.1:6379/0"}))
        """,
        tmp_path,
    )
    assert result.returncode == 2, result.stderr  # a configuration error
    error = json.loads(result.stdout)
    assert error["type"] == "ConfigurationError"
    assert "CTXFY_KEY_STORE" in error["error"]
    assert "pip install 'ctxfy[redis]'" in error["error"]
