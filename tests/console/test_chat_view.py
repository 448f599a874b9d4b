"""The console's chat in a browser: streamed runs with their tool calls, a
paused run answered in its forms, a reload in the middle of a run, cancel, and
sessions reopened with their state."""

from __future__ import annotations

import json
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.console.conftest import (
    ConsoleServer,
    attributes,
    click,
    count,
    find,
    make_agent,
    put,
    text_of,
    visit,
    wait,
)

WORDS = " ".join(f"word{n}" for n in range(40))


def send(page: WebDriver, text: str) -> WebElement:
    """Sends `text` in the chat; returns its run's card."""
    before = count(page, "#runs article.run")
    find(page, "#prompt").send_keys(text)
    find(page, "#send").click()
    wait(page, lambda d: count(d, "#runs article.run") > before)
    return page.find_elements("css selector", "#runs article.run")[-1]


def status_becomes(page: WebDriver, status: str) -> None:
    wait(
        page,
        lambda d: d.find_elements("css selector", f"#runs article.run[data-status={status}]"),
        message=f"no run became {status}",
    )


def last_run(page: WebDriver) -> WebElement:
    return page.find_elements("css selector", "#runs article.run")[-1]


def answer(run: WebElement) -> str:
    return " ".join(node.text for node in run.find_elements("css selector", ".item.answer .text"))


def tool_results(run: WebElement) -> dict[str, str]:
    return {
        node.get_attribute("data-tool"): node.find_element("css selector", ".tool-result").text
        for node in run.find_elements("css selector", ".item.tool")
    }


def api_get(server: ConsoleServer, path: str) -> Any:
    with server.api() as api:
        response = api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_run_shows_its_tool_calls_custom_events_answer_and_metrics(
    page: WebDriver, server: ConsoleServer
) -> None:
    make_agent(server, id="toolbox", model="test:tools",
               tools=["current_time", "calculator", "note_progress"])  # fmt: skip
    visit(page, server, "chat?agent=toolbox&session=chat-tools")
    send(page, "use your tools")
    status_becomes(page, "completed")
    run = last_run(page)
    assert run.find_element("css selector", ".user-input").text == "use your tools"
    assert answer(run) == "Called 3 tools."
    results = tool_results(run)
    assert results["note_progress"] == "noted a"
    assert results["current_time"].startswith("20")  # an ISO timestamp
    assert results["calculator"].startswith("error:")  # the model's "a" is no expression
    args = run.find_element("css selector", ".item.tool[data-tool=note_progress] .tool-args")
    assert json.loads(args.text) == {"step": "a"}
    assert "progress" in run.find_element("css selector", ".item.custom").text
    wait(page, lambda d: find(run, ".metrics").get_attribute("data-ready") == "true")
    assert find(run, "[data-metric='model calls']").text.endswith("2")
    assert find(run, "[data-metric='tool calls']").text.endswith("3")
    # every event is logged in seq order; the session's state changed by the tool shows
    seqs = attributes(run, ".event-log li", "data-seq")
    assert seqs == [str(seq) for seq in range(1, len(seqs) + 1)]
    names = attributes(run, ".event-log li", "data-event")
    assert names[0] == "RunStarted" and names[-1] == "RunCompleted"
    assert names.count("ToolCallCompleted") == 3 and "CustomEvent" in names
    state = find(page, "#session-state")
    wait(page, lambda _: '"last_step": "a"' in state.get_attribute("value"))


def test_a_paused_run_is_confirmed_rejected_given_input_and_a_result_then_goes_on(
    page: WebDriver, server: ConsoleServer
) -> None:
    make_agent(server, id="careful", model="test:tools", tools=[
        {"name": "current_time", "requires_confirmation": True},
        {"name": "note_progress", "requires_confirmation": True},
        {"name": "calculator", "requires_user_input": True},
        {"type": "client", "name": "get_location", "description": "Where the user is."},
    ])  # fmt: skip
    visit(page, server, "chat?agent=careful&session=chat-hitl")
    send(page, "ask me first")
    status_becomes(page, "paused")
    form = find(page, "form.requirements")
    kinds = attributes(form, ".requirement", "data-kind")
    assert sorted(kinds) == ["confirmation", "confirmation", "external_execution", "user_input"]
    clock = find(form, ".requirement[data-tool-call-id='call_0_0']")
    click(clock.find_element("css selector", "input.confirm"))
    noter = find(form, ".requirement[data-tool-call-id='call_0_1']")
    click(noter.find_element("css selector", "input.reject"))
    noter.find_element("css selector", "input.note").send_keys("not today")
    calculator = find(form, ".requirement[data-kind=user_input]")
    expression = calculator.find_element("css selector", "input[name=expression]")
    click(expression)
    expression.clear()
    expression.send_keys("6 * 7")
    client = find(form, ".requirement[data-kind=external_execution]")
    click(client.find_element("css selector", "textarea.result"))
    client.find_element("css selector", "textarea.result").send_keys("Berlin")
    click(form.find_element("css selector", "button[type=submit]"))

    status_becomes(page, "completed")
    run = last_run(page)
    results = tool_results(run)
    assert results["calculator"] == "42"
    assert results["get_location"] == "Berlin"
    assert results["current_time"].startswith("20")
    assert (
        run.find_element("css selector", ".item.tool[data-tool=note_progress]").get_attribute(
            "data-status"
        )
        == "rejected"
    )
    assert answer(run) == "Called 4 tools."
    names = attributes(run, ".event-log li", "data-event")
    assert names.index("RunPaused") < names.index("RunContinued") < names.index("RunCompleted")
    run_id = run.get_attribute("data-run-id")
    stored = api_get(server, f"/v1/runs/{run_id}")
    assert stored["status"] == "completed"
    calls = {tool["tool_name"]: tool for tool in stored["tools"]}
    assert calls["calculator"]["tool_args"] == {"expression": "6 * 7"}
    assert calls["note_progress"]["status"] == "rejected"


def test_a_reload_in_the_middle_of_a_run_reattaches_and_misses_nothing(
    page: WebDriver, server: ConsoleServer
) -> None:
    make_agent(server, id="slow", model="test:echo", model_settings={"chunk_delay": 0.15})
    visit(page, server, "chat?agent=slow&session=chat-reload")
    send(page, WORDS)
    wait(page, lambda d: len(answer(last_run(d)).split()) >= 5)
    page.refresh()
    wait(page, lambda d: d.execute_script("return document.body.dataset.view") == "chat")
    status_becomes(page, "completed")
    run = last_run(page)
    assert answer(run) == WORDS
    resumed = find(run, ".resumed")
    assert int(resumed.get_attribute("data-after")) >= 5
    events, last_seq = run.get_attribute("data-events"), run.get_attribute("data-last-seq")
    assert events == last_seq and int(events) > 40
    assert not run.find_elements("css selector", ".item.error")
    assert run.find_element("css selector", ".user-input").text == WORDS
    assert page.execute_script("return sessionStorage.getItem('agentd.console.active')") is None


def test_a_running_run_is_cancelled(page: WebDriver, server: ConsoleServer) -> None:
    make_agent(server, id="sluggish", model="test:echo", model_settings={"chunk_delay": 0.5})
    visit(page, server, "chat?agent=sluggish&session=chat-cancel")
    send(page, WORDS)
    wait(page, lambda d: answer(last_run(d)))
    find(page, "#cancel").click()
    status_becomes(page, "cancelled")
    run = last_run(page)
    assert run.find_element("css selector", ".item.cancelled").text.startswith("cancelled")
    assert len(answer(run).split()) < 40
    assert api_get(server, f"/v1/runs/{run.get_attribute('data-run-id')}")["status"] == "cancelled"
    wait(page, lambda d: d.find_element("id", "cancel").get_attribute("disabled") is not None)


def test_a_session_is_listed_reopened_and_its_state_edited(
    page: WebDriver, server: ConsoleServer
) -> None:
    make_agent(server, id="echoer", model="test:echo")
    with server.api() as api:
        for text in ("first words", "second words"):
            body = {"input": text, "session_id": "kept-session", "session_state": {"topic": "x"}}
            assert api.post("/v1/agents/echoer/runs", json=body).json()["status"] == "completed"
    visit(page, server, "sessions")
    find(page, "tr[data-session-id=kept-session] a.open-session").click()
    wait(page, lambda d: count(d, "#runs article.run[data-status=completed]") == 2)
    runs = page.find_elements("css selector", "#runs article.run")
    inputs = [run.find_element("css selector", ".user-input").text for run in runs]
    assert inputs == ["first words", "second words"]
    assert [answer(r) for r in runs] == ["first words", "second words"]
    assert find(page, "#chat-agent").get_attribute("value") == "echoer"

    find(page, "#session-history-box summary").click()
    wait(page, lambda d: count(d, "#session-messages li") == 4)
    state = find(page, "#session-state")
    assert json.loads(state.get_attribute("value")) == {"topic": "x"}
    put(state, '{"topic": null, "mood": "calm"}')
    find(page, "#session-state-save").click()
    wait(page, lambda d: text_of(d, "#session-state-status") == "Saved.")
    assert api_get(server, "/v1/sessions/kept-session")["session_state"] == {"mood": "calm"}
