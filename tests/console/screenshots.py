"""Screenshots of the console's main views for the README, taken with the same
browser and server the browser tests use:

    .venv/bin/python -m tests.console.screenshots docs

writes docs/console-agents.png, docs/console-chat.png and docs/console-paused.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import ConsoleServer, find, make_agent, new_browser, visit, wait
from tests.console.test_chat_view import send, status_becomes


def agents_view(driver: WebDriver, server: ConsoleServer, folder: Path) -> None:
    visit(driver, server, "agents/support")
    wait(driver, lambda d: d.find_elements("css selector", "#agent-versions li"))
    driver.save_screenshot(str(folder / "console-agents.png"))


def chat_view(driver: WebDriver, server: ConsoleServer, folder: Path) -> None:
    visit(driver, server, "chat?agent=support&session=tour")
    send(driver, "What time is it? Note it down, please.")
    status_becomes(driver, "completed")
    find(driver, "#runs .metrics[data-ready=true]")
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(folder / "console-chat.png"))


def paused_view(driver: WebDriver, server: ConsoleServer, folder: Path) -> None:
    visit(driver, server, "chat?agent=careful&session=review")
    send(driver, "Work out 6 * 7, and note the time.")
    status_becomes(driver, "paused")
    form = find(driver, "form.requirements")
    form.find_element("css selector", "input.confirm").click()
    form.find_element("css selector", "input[name=expression]").send_keys("6 * 7")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", form)
    driver.save_screenshot(str(folder / "console-paused.png"))


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        server = ConsoleServer(f"sqlite+aiosqlite:///{scratch}/agentd.db", Path(scratch) / "log")
        driver = new_browser()
        driver.set_window_size(1440, 1080)
        try:
            make_agent(server, id="support", name="Support", model="test:tools",
                       instructions="You are terse. Use the tools when they help.",
                       tools=["current_time", "note_progress"],
                       model_settings={"temperature": 0.2})  # fmt: skip
            make_agent(server, id="careful", name="Careful", model="test:tools", tools=[
                {"name": "current_time", "requires_confirmation": True},
                {"name": "calculator", "requires_user_input": True},
            ])  # fmt: skip
            agents_view(driver, server, folder)
            chat_view(driver, server, folder)
            paused_view(driver, server, folder)
        finally:
            driver.quit()
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
