"""The command line, run in-process: prompts list/render and errors."""

import asyncio
import json
import socket
from pathlib import Path

import pytest

from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystores import open_key_store
from ctxfy.cli import main
from ctxfy.settings import Settings


def test_prompts_list_prints_every_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "list"], environ={}) == 0
    out = capsys.readouterr().out
    assert "context_stack(objective, domain?" in out
    assert out.count("\n") == 3


def test_prompts_list_json_has_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "list", "--json"], environ={}) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in data] == ["context_stack", "prp", "technical_spec"]
    assert data[1]["required"] == ["feature"]


def test_prompts_render_validates_and_renders(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "render", "prp", "--arg", "feature=Rotate keys"], environ={}) == 0
    assert '<user_input name="feature">\nRotate keys\n</user_input>' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prompts", "render", "nope"], "no prompt named 'nope'"),
        (["prompts", "render", "prp", "--arg", "feature"], "must have the form KEY=VALUE"),
        (["prompts", "render", "prp"], "feature is required"),
    ],
)
def test_cli_errors_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, environ={}) == 2
    assert message in capsys.readouterr().err


def test_user_prompts_dir_is_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.md").write_text("---\n---\nHello\n", encoding="utf-8")
    assert main(["prompts", "list"], environ={"CTXFY_PROMPTS_DIR": str(tmp_path)}) == 0
    assert "mine()" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "99999"], "--port '99999' is invalid: a port is a whole number from 0 to"),
        (["serve", "--port", "-5"], "--port '-5' is invalid: a port is a whole number"),
        (["--port", "http"], "--port 'http' is invalid: invalid literal for int()"),
    ],
)
def test_flags_pass_the_settings_checks_and_errors_name_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, environ={}) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ctxfy: error: {message}")
    assert "CTXFY_PORT" not in err
    assert "Traceback" not in err


def test_a_valid_flag_overrides_a_bad_variable(capsys: pytest.CaptureFixture[str]) -> None:
    # The flag wins, so the variable's bad value is never read; the prompts command needs
    # no port, which keeps this offline.
    assert main(["--port", "9000", "prompts", "list"], environ={"CTXFY_PORT": "99999"}) == 0


def test_an_unknown_variable_is_a_warning_with_a_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["prompts", "list"], environ={"CTXFY_LLM_TIMEOUT": "5"}) == 0
    assert capsys.readouterr().err == (
        "ctxfy: warning: CTXFY_LLM_TIMEOUT is not a ctxfy setting "
        "(did you mean CTXFY_LLM_TIMEOUT_S?); it is ignored\n"
    )


async def _key_names(url: str) -> list[str]:
    store = open_key_store(url)
    try:
        return [record.name for record in await KeyAdmin(store).list_keys()]
    finally:
        await store.aclose()


def test_keys_cli_and_server_settings_share_a_relative_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {"CTXFY_DATA_DIR": "reldata"}
    assert main(["keys", "create", "--name", "ci", "--scope", "read"], environ=environ) == 0
    capsys.readouterr()
    # The server opens the store the settings name: it must see the key ``ctxfy keys`` made.
    assert asyncio.run(_key_names(Settings.from_env(environ).key_store_url)) == ["ci"]
    assert (tmp_path / "reldata" / "ctxfy.db").is_file()


def test_a_port_in_use_exits_3_before_the_banner_and_the_bootstrap_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--port", str(port)], environ={"CTXFY_DATA_DIR": str(tmp_path)})
    err = capsys.readouterr().err
    assert code == 3
    assert err == (
        f"ctxfy: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another process listens there: stop it or choose --port/CTXFY_PORT)\n"
    )
    assert not (tmp_path / "bootstrap-admin.key").exists()


def ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")


def test_an_ipv4_listener_does_not_stop_a_server_on_the_ipv6_wildcard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn binds ``::`` IPv6-only, so an IPv4 process on the same port is no conflict.

    The start gets past the address check and stops at the next one (no key on a
    non-loopback address), before anything listens.
    """
    ipv6_loopback()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            ["--host", "::", "--port", str(port)], environ={"CTXFY_DATA_DIR": str(tmp_path)}
        )
    err = capsys.readouterr().err
    assert "cannot listen" not in err
    assert code == 2
    assert "ctxfy keys create" in err


def test_a_port_in_use_on_ipv6_names_the_address_in_brackets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ipv6_loopback()
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            ["--host", "::1", "--port", str(port)], environ={"CTXFY_DATA_DIR": str(tmp_path)}
        )
    assert code == 3
    assert capsys.readouterr().err.startswith(
        f"ctxfy: error: cannot listen on [::1]:{port}: Address already in use"
    )
