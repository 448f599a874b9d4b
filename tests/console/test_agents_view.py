"""The console's agents view in a browser: create in the form, edit as JSON,
versions, and every 422 error shown at the field it names."""

from __future__ import annotations

import json

from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.console.conftest import (
    ConsoleServer,
    attributes,
    count,
    find,
    make_agent,
    put,
    text_of,
    visit,
    wait,
)


def set_value(page: WebDriver, css: str, text: str) -> None:
    field = find(page, css)
    field.clear()
    field.send_keys(text)


def test_an_agent_is_created_in_the_form_edited_as_json_and_its_versions_listed(
    page: WebDriver, server: ConsoleServer
) -> None:
    make_agent(server, id="billing", model="test:echo")
    visit(page, server, "agents/new")
    set_value(page, "#agent-field-id", "helper")
    set_value(page, "#agent-field-name", "Helper")
    set_value(page, "#agent-field-model", "test:tools")
    Select(find(page, "select[data-tool=current_time]")).select_by_value("on")
    Select(find(page, "select[data-tool=calculator]")).select_by_value("confirm")
    find(page, "input[name=handoffs][value=billing]").click()
    find(page, "#agent-save").click()
    wait(page, lambda d: "version 1" in text_of(d, "#agent-status"))
    assert "helper" in text_of(page, "#agent-list li.selected")

    with server.api() as api:
        stored = api.get("/v1/agents/helper").json()
    assert stored["name"] == "Helper" and stored["model"] == "test:tools"
    assert stored["tools"] == [
        {
            "type": "function",
            "name": "calculator",
            "requires_confirmation": True,
            "requires_user_input": False,
            "user_input_fields": None,
        },
        "current_time",
    ]  # fmt: skip (new entries in the order the server lists its tools)
    assert stored["handoffs"] == ["billing"]

    find(page, ".tab[data-mode=json]").click()
    shown = json.loads(find(page, "#agent-json").get_attribute("value"))
    assert shown["tools"] == [{"name": "calculator", "requires_confirmation": True}, "current_time"]
    assert shown["handoffs"] == ["billing"] and "version" not in shown
    shown["instructions"] = ["Be brief.", "Be kind."]
    put(find(page, "#agent-json"), json.dumps(shown))
    find(page, "#agent-save").click()
    wait(page, lambda d: "version 2" in text_of(d, "#agent-status"))
    with server.api() as api:
        assert api.get("/v1/agents/helper").json()["instructions"] == ["Be brief.", "Be kind."]

    wait(page, lambda d: count(d, "#agent-versions li") == 2)
    assert attributes(page, "#agent-versions li", "data-version") == ["2", "1"]
    find(page, "#agent-versions li[data-version='1'] button").click()
    wait(page, lambda d: '"instructions": ""' in text_of(d, ".version-view pre"))
    # the form shows what the JSON view saved
    assert find(page, "#agent-field-instructions").get_attribute("value") == "Be brief.\nBe kind."


def test_a_refused_definition_shows_each_error_at_its_field(
    page: WebDriver, server: ConsoleServer
) -> None:
    visit(page, server, "agents/new")
    set_value(page, "#agent-field-id", "Not A Slug")
    set_value(page, "#agent-field-max_turns", "0")
    set_value(page, "#agent-field-model_settings", "{not json")
    find(page, "#agent-save").click()
    # JSON the browser cannot parse is caught before anything is sent
    wait(page, lambda d: "not JSON" in text_of(d, "[data-error-for=model_settings]"))

    set_value(page, "#agent-field-model_settings", '{"temperature": 0.2}')
    find(page, "#agent-save").click()
    id_error = text_of(page, "[data-error-for=id]")
    assert "should match pattern" in id_error
    assert "greater than or equal to 1" in text_of(page, "[data-error-for=max_turns]")
    assert "validation_error" in text_of(page, "#agent-status")
    assert not page.find_elements("css selector", "[data-error-for=model_settings]:not([hidden])")
    assert "invalid" in find(page, "#agent-field-id").get_attribute("class")

    # the JSON view lists the server's errors by their location
    set_value(page, "#agent-field-id", "fixed")
    set_value(page, "#agent-field-max_turns", "3")
    find(page, ".tab[data-mode=json]").click()
    definition = json.loads(find(page, "#agent-json").get_attribute("value"))
    definition["tools"] = ["no_such_tool"]
    definition["model"] = "nowhere:model"
    put(find(page, "#agent-json"), json.dumps(definition))
    find(page, "#agent-save").click()
    wait(page, lambda d: d.find_elements("css selector", "#agent-json-errors li[data-loc='model']"))
    listed = text_of(page, "#agent-json-errors")
    assert "unknown model provider 'nowhere'" in listed
    assert "tools.0" in listed and "no_such_tool" in listed
    find(page, ".tab[data-mode=form]").click()
    assert "nowhere" in text_of(page, "[data-error-for=model]")
    with server.api() as api:
        assert api.get("/v1/agents").json()["data"] == []
