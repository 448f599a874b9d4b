"""The console with API keys configured: the page loads without one, says the
API refused it, and sends the key typed in the top bar (kept in localStorage)
as `Authorization: Bearer`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import ConsoleServer, find, text_of, visit, wait

KEY = "console-test-key"


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    log = tmp_path_factory.mktemp("console") / "agentd.log"
    served = ConsoleServer(database_url, log, API_KEYS=KEY)
    try:
        yield served
    finally:
        served.stop()


def test_the_key_typed_in_the_top_bar_is_sent_and_kept(
    page: WebDriver, server: ConsoleServer
) -> None:
    with server.api() as api:
        created = api.post(
            "/v1/agents",
            json={"id": "guarded", "model": "test:echo"},
            headers={"authorization": f"Bearer {KEY}"},
        )
    assert created.status_code == 201, created.text
    visit(page, server, "agents")
    assert "unauthorized" in text_of(page, "#notice")
    assert not page.find_elements("css selector", "#agent-list li[data-agent-id]")

    find(page, "#token").send_keys(KEY)
    find(page, "#token-form button").click()
    wait(page, lambda d: d.find_elements("css selector", "#agent-list li[data-agent-id=guarded]"))
    assert not find(page, "#agent-list").find_elements("css selector", ".field-error")
    assert page.execute_script("return localStorage.getItem('agentd.console.token')") == KEY

    visit(page, server, "agents")  # a new page load reads the key back
    wait(page, lambda d: d.find_elements("css selector", "#agent-list li[data-agent-id=guarded]"))
    assert find(page, "#token").get_attribute("value") == KEY
    assert page.find_element("id", "notice").get_attribute("hidden") is not None
