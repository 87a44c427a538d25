"""Headless Chromium for the dashboard's browser tests: Debian's ``chromium`` driven through its
``chromium-driver`` (Selenium is given the driver's path, so Selenium Manager downloads
nothing), a screenshot per test saved as a test artifact, and the page's console errors."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Screenshots land here (CI keeps the folder as an artifact); GENTRAIN_TEST_ARTIFACTS moves it.
REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("GENTRAIN_TEST_ARTIFACTS", REPOSITORY / "test-artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"
# How long a page may take to show what a test waits for: a tiny training on a shared 2-core
# machine, not a performance bound (the test fails only if it never happens).
PATIENCE = 180.0
LAPTOP = (1280, 900)
PHONE = (390, 844)

T = TypeVar("T")


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None (``.ci/run`` installs both)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists() and shutil.which(path.name) is None:
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    return None


def start_chromium(size: tuple[int, int] = LAPTOP) -> WebDriver:
    """A headless Chromium that keeps its console log (read with ``console_errors``)."""
    options = Options()
    options.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = CHROMEDRIVER if CHROMEDRIVER.exists() else Path(str(shutil.which("chromedriver")))
    driver = webdriver.Chrome(options=options, service=DriverService(str(driver_path)))
    driver.set_page_load_timeout(60)
    return driver


def forget_cookies(driver: WebDriver) -> None:
    """Every site's cookies gone (a fresh visitor; ``delete_all_cookies`` clears one site's)."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})


def artifact_name(node_id: str) -> str:
    """A file name for a test: ``tests/ui/test_x.py::test_y[full]`` → ``test_x.test_y-full``."""
    module, _, name = node_id.rpartition("::")
    stem = Path(module).stem if module else ""
    text = f"{stem}.{name}" if stem else name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def save_screenshot(driver: WebDriver, name: str) -> Path:
    """The page as it is now, as ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
    return path


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    """The console's SEVERE entries since last read (reading empties Chromium's buffer)."""
    entries: list[dict[str, Any]] = cast(Any, driver).get_log("browser")  # Chromium's own
    return [entry for entry in entries if entry.get("level") == "SEVERE"]


def assert_no_console_errors(driver: WebDriver) -> None:
    """Fail with the messages if the page logged any JavaScript or network error."""
    errors = console_errors(driver)
    assert not errors, "console errors:\n" + "\n".join(str(e.get("message")) for e in errors)


def wait_until(
    driver: WebDriver,
    condition: Callable[[WebDriver], T],
    timeout: float = PATIENCE,
    what: str = "",
) -> T:
    """Wait for ``condition`` to be truthy and return it; fail naming ``what`` if it never is
    within ``timeout`` seconds (a bound on patience, not a performance assertion)."""
    try:
        # A live page replaces elements as events arrive: one found a moment ago may be gone.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        waiter = WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=ignored)
        return waiter.until(condition)
    except Exception as error:  # TimeoutException, or the condition's own error at the end
        name = what or getattr(condition, "__name__", "the condition")
        pytest.fail(f"never happened: {name} ({type(error).__name__})\nat {driver.current_url}")
