"""Fixtures for the console's browser tests: agentd served by a real uvicorn
process on 127.0.0.1 (one per test module and database), and one headless
Chromium per module driven through chromedriver (Debian's `chromium` and
`chromium-driver` packages; `make tools` installs them).

Every wait is on a DOM condition with a generous timeout: the suite runs on
small, loaded machines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.replicas.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
WAIT = 45.0  # seconds: a loaded 2-core machine is slow, never this slow
CHROMIUM = os.environ.get("AGENTD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AGENTD_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")


class ConsoleServer:
    """`uvicorn app.main:app` in its own process, on the test database."""

    def __init__(self, database_url: str, log: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "AGENTD_"))}
        env.update(
            DATABASE_URL=database_url,
            TOOL_MODULES="tests.console.console_tools",
            SEED_DEMO_AGENT="false",
            LOG_LEVEL="warning",
            PYTHONPATH=str(ROOT),
            **settings,
        )
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-access-log", "--timeout-graceful-shutdown", "5"],
            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"agentd exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("agentd did not become ready")

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    log = tmp_path_factory.mktemp("console") / "agentd.log"
    served = ConsoleServer(database_url, log)
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(autouse=True)
def clean_database(db_engine: object) -> None:
    """Every test leaves the database empty (db_engine deletes every row after it)."""


def new_browser() -> WebDriver:
    """Headless Chromium through chromedriver, its console log kept."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not shutil.which(path):
            pytest.fail(f"{path} is missing: `make tools` installs {package}", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        "--window-size=1440,1000", "--force-device-scale-factor=1",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT)
    return driver


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = new_browser()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: WebDriver, server: ConsoleServer) -> Iterator[WebDriver]:
    """The console with fresh storage. Errors in its console (a script error, a
    Content-Security-Policy violation) fail the test; refused requests do not."""
    browser.get(f"{server.url}/console/console.css")
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    browser.get("about:blank")
    browser.get_log("browser")
    yield browser
    assert not page_errors(browser)


def page_errors(driver: WebDriver) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]
    ]


def wait(driver: WebDriver, condition: Any, timeout: float = WAIT, message: str = "") -> Any:
    """`condition(driver)` once it is truthy (stale elements count as not yet)."""
    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, message)


def find(driver: WebDriver | WebElement, css: str) -> WebElement:
    """The element matching `css` once it exists and is shown."""
    root = driver if isinstance(driver, WebDriver) else driver.parent

    def shown(_: Any) -> WebElement | bool:
        for element in driver.find_elements("css selector", css):
            if element.is_displayed():
                return element
        return False

    found: WebElement = wait(root, shown, message=f"no visible {css}")
    return found


def click(element: WebElement) -> None:
    """Clicks `element` once it is scrolled to the middle of the window (the chat's
    composer stays at the bottom, over whatever scrolls under it)."""
    element.parent.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def visit(driver: WebDriver, server: ConsoleServer, fragment: str) -> None:
    """Loads the console afresh at `#fragment` and waits for its view."""
    driver.get("about:blank")
    driver.get(f"{server.url}/#{fragment}")
    view = fragment.split("?")[0].split("/")[0]
    wait(driver, lambda d: d.execute_script("return document.body.dataset.view") == view)


def attributes(root: WebDriver | WebElement, css: str, name: str) -> list[str | None]:
    """Attribute `name` of each element matching `css`, in document order."""
    return [element.get_attribute(name) for element in root.find_elements("css selector", css)]


def count(root: WebDriver | WebElement, css: str) -> int:
    return len(root.find_elements("css selector", css))


def put(element: WebElement, text: str) -> None:
    """Replaces a text box's value at once (typing long JSON key by key is slow)."""
    element.parent.execute_script("arguments[0].value = arguments[1]", element, text)


def text_of(driver: WebDriver | WebElement, css: str) -> str:
    return find(driver, css).text


def make_agent(server: ConsoleServer, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post("/v1/agents", json=fields)
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent
