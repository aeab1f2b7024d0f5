"""The session-wide guard against API keys in logs (``tests/conftest.py``) really watches."""

import io
import logging
from pathlib import Path

from loguru import logger

from ctxfy.adapters.key_admin import new_api_key
from ctxfy.adapters.logging import configure_logging
from tests.conftest import KeyMaterialWatch


def test_the_session_watch_still_sees_records_after_logging_is_reconfigured(
    no_key_material_in_logs: KeyMaterialWatch,
) -> None:
    before = no_key_material_in_logs.records
    undo = configure_logging("INFO", "json", io.StringIO())  # removes every loguru sink
    try:
        logger.info("watched loguru record")
        logging.getLogger("ctxfy.watch-test").warning("watched stdlib record")
    finally:
        undo()
    # The stdlib record is seen twice: created, then forwarded to loguru.
    assert no_key_material_in_logs.records >= before + 3


def test_a_key_in_a_record_or_a_log_file_is_reported_masked(tmp_path: Path) -> None:
    key = new_api_key()
    watch = KeyMaterialWatch()
    watch.check("here", f"Authorization: Bearer {key.text}")
    watch.check("here", f"only the redacted form {key.redacted}")
    make = watch.record_factory(logging.LogRecord)
    make("t", logging.INFO, __file__, 1, "key %s", (key.text,), None)
    (tmp_path / "run").mkdir()
    log = tmp_path / "run" / "server.log"
    log.write_text(f"ok\nleaked {key.text}\n", encoding="utf-8")
    (tmp_path / "run" / "bootstrap-admin.key").write_text(key.text, encoding="utf-8")
    try:
        watch.check_files(tmp_path)
    finally:
        log.unlink()  # else the session's own check of the temporary files finds it
    assert len(watch.leaks) == 3
    assert watch.leaks[2].startswith("run/server.log:2: ")
    assert all("<API KEY>" in leak and key.secret not in leak for leak in watch.leaks)
