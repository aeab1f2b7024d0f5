"""``/docs`` in headless Chromium: authorize with a key, try a prompt, stay on the server.

Uses Debian's ``chromium`` (``apt-get install chromium``) through Playwright's driver from
PyPI; Playwright's own browser downloads are never used. Skipped only outside CI when
``/usr/bin/chromium`` is missing; in CI it fails instead.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Request, Response, Route, sync_playwright

from tests.e2e.ctxfy_process import ctxfy_process

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI must install Chromium for the /docs browser test: apt-get install chromium")
    pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")


def is_prompt_call(response: Response) -> bool:
    return response.url.endswith("/v1/prompts/context_stack")


def test_docs_authorize_and_try_a_prompt_without_leaving_the_server(
    tmp_path: Path, unused_port: int
) -> None:
    require_chromium()
    requested: list[str] = []
    console: list[str] = []

    def keep_local(route: Route) -> None:
        # A second guard behind the page's CSP: anything for another host is recorded
        # (by the request listener) and never sent.
        if urlsplit(route.request.url).netloc == f"127.0.0.1:{unused_port}":
            route.continue_()
        else:
            route.abort()

    def on_request(request: Request) -> None:
        requested.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            console.append(message.text)

    with (
        ctxfy_process(tmp_path, unused_port) as server,
        sync_playwright() as playwright,
    ):
        key = server.create_key("read")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", keep_local)
            page.on("request", on_request)
            page.on("console", on_console)
            page.goto(f"{server.base}/docs")
            page.wait_for_selector("#operations-prompts-prompt_context_stack", timeout=20_000)

            page.click("button.authorize")
            dialog = page.locator(".modal-ux")
            section = dialog.locator(".auth-container", has_text="apiKeyAuth")
            section.locator("input").fill(key)
            section.locator("button.authorize").click()
            dialog.locator("button.btn-done").first.click()

            operation = page.locator("#operations-prompts-prompt_context_stack")
            operation.locator(".opblock-summary").click()
            operation.locator("button.try-out__btn").click()
            with page.expect_response(is_prompt_call) as answer:
                operation.locator("button.execute").click()
            response = answer.value
            status = operation.locator(".live-responses-table .response .response-col_status").first
            status.wait_for(timeout=20_000)
            shown = status.inner_text().strip()
            body = response.json()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            browser.close()

    assert response.status == 200
    assert shown == "200"
    assert response.request.headers.get("x-api-key") == key
    assert body["messages"][0]["role"] == "user"
    assert "Add API-key authentication" in body["messages"][0]["content"]["text"]
    hosts = {urlsplit(url).netloc for url in requested}
    assert hosts == {f"127.0.0.1:{unused_port}"}, sorted(set(requested))
    assert not [text for text in console if "Content Security Policy" in text], console
    assert (tmp_path / "docs.png").stat().st_size > 10_000
