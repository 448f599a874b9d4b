"""The console with API keys configured: the page loads without one, says the
API refused it, and sends the key typed in the top bar (kept in localStorage)
as `Authorization: Bearer`; with a tenant user's key it shows only that
tenant's agents and that user's sessions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import ConsoleServer, attributes, find, text_of, visit, wait

KEY = "console-test-key"
DATA_SCOPES = ["agents:read", "runs:read", "runs:write", "sessions:read", "sessions:write"]


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


def test_a_tenant_users_key_shows_only_what_it_may_see(
    page: WebDriver, server: ConsoleServer
) -> None:
    operator = {"authorization": f"Bearer {KEY}"}
    with server.api() as api:

        def stored_key(**body: Any) -> str:
            created = api.post("/v1/api-keys", json=body, headers=operator)
            assert created.status_code == 201, created.text
            key: str = created.json()["key"]
            return key

        acme = {
            "authorization": f"Bearer {stored_key(name='a', tenant_id='acme', scopes=['admin'])}"
        }
        for tenant, admin in (("default", operator), ("acme", acme)):
            agent = {"id": f"{tenant}-agent", "model": "test:echo"}
            assert api.post("/v1/agents", json=agent, headers=admin).status_code == 201
            for user in ("u1", "u2"):
                run = {"input": "hi", "session_id": f"{tenant}-{user}", "user_id": user}
                answer = api.post(f"/v1/agents/{tenant}-agent/runs", json=run, headers=admin)
                assert answer.status_code == 200, answer.text
        u1 = stored_key(name="u1", tenant_id="acme", scopes=DATA_SCOPES, user_id="u1")

    visit(page, server, "agents")
    find(page, "#token").send_keys(u1)
    find(page, "#token-form button").click()
    wait(page, lambda d: d.find_elements("css selector", "#agent-list li[data-agent-id]"))
    assert attributes(page, "#agent-list li[data-agent-id]", "data-agent-id") == ["acme-agent"]

    visit(page, server, "sessions")
    wait(page, lambda d: d.find_elements("css selector", "#session-rows tr[data-session-id]"))
    assert attributes(page, "#session-rows tr[data-session-id]", "data-session-id") == ["acme-u1"]
