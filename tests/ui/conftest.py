"""Browser-test fixtures: real API and worker processes (from tests/e2e) and one headless
Chromium per module, with a screenshot saved at every test's end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.conftest import Service, embedded_service, full_service  # noqa: F401
from tests.ui.browser import (
    artifact_name,
    chromium_missing,
    console_errors,
    forget_cookies,
    save_screenshot,
    start_chromium,
)


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    """One headless Chromium for a module's tests (starting one costs about a second)."""
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)  # CI installs it; a silent skip would hide the whole suite
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: WebDriver, request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """The module's Chromium with no cookies and an empty console log; the page's screenshot is
    saved when the test ends, passed or failed (test-artifacts/screenshots/<test>.png)."""
    forget_cookies(chromium)
    console_errors(chromium)  # drop what an earlier test left
    yield chromium
    save_screenshot(chromium, artifact_name(request.node.nodeid))


@pytest.fixture
def driver(browser: WebDriver) -> WebDriver:
    """The same as ``browser``, by Selenium's usual name."""
    return browser
