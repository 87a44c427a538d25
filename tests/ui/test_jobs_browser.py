"""The jobs page and sign-in in real headless Chromium against real API and worker processes:
a job submitted over the API appears in the open page and reaches ``succeeded`` without a
reload; with keys required the pages need sign-in, the session's stream keeps the table live,
and another owner's job is neither listed nor found. No console errors; a screenshot per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from shared.api_keys import create_key
from tests.conftest import REDIS_URL
from tests.e2e.conftest import Service
from tests.e2e.stack import FullStack
from tests.e2e.test_training_flow import upload_mnist
from tests.services.ui import written_jobs as w
from tests.ui.browser import PHONE, assert_no_console_errors, console_errors, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def row_status(browser: WebDriver, job_id: str) -> str | None:
    """The status a job's row shows, or None while there is no row."""
    rows = browser.find_elements(By.CSS_SELECTOR, f'tr[data-job-id="{job_id}"] .badge')
    return rows[0].text if rows else None


def open_live(browser: WebDriver, url: str) -> None:
    """Open the jobs page and wait for its stream; mark the document to tell a reload."""
    browser.get(url)
    wait_until(browser, lambda b: b.find_element(By.ID, "live-state").text == "live", what="live")
    browser.execute_script("window.gentrainNoReload = true;")


def test_a_submitted_job_appears_and_succeeds_without_a_reload(
    browser: WebDriver, embedded_service: Service, mnist_path: Path
) -> None:
    service = embedded_service
    dataset = upload_mnist(service, mnist_path)
    open_live(browser, f"{service.url}/ui/")
    response = requests.post(
        f"{service.url}/v1/jobs",
        json={
            "kind": "autoencoder",
            "dataset": dataset,
            "params": {"epochs": 2, "max_train_images": 512},
        },
        timeout=10,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    wait_until(browser, lambda b: row_status(b, job_id), what="the new job's row")
    first = browser.find_element(By.CSS_SELECTOR, "#job-rows tr")
    assert first.get_attribute("data-job-id") == job_id  # at the top
    status = wait_until(
        browser,
        lambda b: row_status(b, job_id) in ("succeeded", "failed", "cancelled"),
        what=f"job {job_id} ending\n{service.logs()}",
    )
    assert status and row_status(browser, job_id) == "succeeded", service.logs()
    row = f'tr[data-job-id="{job_id}"]'
    bar = browser.find_element(By.CSS_SELECTOR, f"{row} progress")
    assert bar.get_attribute("value") == "1"
    result = wait_until(
        browser,
        lambda b: "mse" in b.find_element(By.CSS_SELECTOR, f"{row} .job-result").text,
        what="the key result",
    )
    assert result
    assert browser.execute_script("return window.gentrainNoReload === true;")
    link = browser.find_element(By.CSS_SELECTOR, f"{row} a.job-link")
    assert link.get_attribute("href") == f"{service.url}/ui/jobs/{job_id}"
    assert_no_console_errors(browser)
    # Readable at a phone's width too (the screenshot is of this).
    browser.set_window_size(*PHONE)
    try:
        browser.refresh()
        wait_until(browser, lambda b: row_status(b, job_id) == "succeeded", what="narrow")
        width = browser.execute_script("return document.documentElement.scrollWidth;")
        assert width <= PHONE[0] + 1, f"the page scrolls sideways at a phone's width: {width}"
        assert_no_console_errors(browser)
    finally:
        browser.set_window_size(1280, 900)


@pytest.fixture(scope="module")
def keyed_stack(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[FullStack]:
    """The API with keys required (PostgreSQL, Redis, S3); jobs are written straight into its
    database, so no worker is needed."""
    stack = FullStack(
        tmp_path_factory.mktemp("keyed"), s3_endpoint, broker_url=REDIS_URL, auth="required"
    )
    try:
        stack.start_api()
        yield stack
    finally:
        stack.close()


def test_with_keys_the_pages_need_sign_in_and_show_only_the_owners_jobs(
    browser: WebDriver, keyed_stack: FullStack
) -> None:
    url = keyed_stack.settings.database_url
    _, alice = create_key(url, "alice")
    mine = w.new_job(url, "autoencoder", {"epochs": 1}, owner="alice")
    theirs = w.new_job(url, "autoencoder", {"epochs": 1}, owner="bob")
    base = keyed_stack.url

    browser.get(f"{base}/ui/")
    assert browser.current_url.startswith(f"{base}/ui/signin?next=")
    browser.find_element(By.ID, "key").send_keys(alice)
    browser.find_element(By.ID, "signin-button").click()
    wait_until(browser, lambda b: b.current_url == f"{base}/ui/", what="signed in")
    assert alice not in browser.current_url
    cookies = {cookie["name"]: cookie for cookie in browser.get_cookies()}
    assert cookies["gentrain_session"]["httpOnly"] and alice not in str(cookies)
    assert browser.execute_script("return document.cookie;") == ""  # HttpOnly: no script sees it
    assert browser.execute_script("return JSON.stringify(localStorage);") == "{}"
    assert "alice" in browser.find_element(By.CSS_SELECTOR, ".top-user").text
    wait_until(browser, lambda b: b.find_element(By.ID, "live-state").text == "live", what="live")
    browser.execute_script("window.gentrainNoReload = true;")
    assert row_status(browser, mine) == "queued" and row_status(browser, theirs) is None

    # The session's EventSource carries the table: cancelling the job shows at once.
    cancelled = requests.post(
        f"{base}/v1/jobs/{mine}/cancel", headers={"Authorization": f"Bearer {alice}"}, timeout=10
    )
    assert cancelled.status_code == 202, cancelled.text
    wait_until(browser, lambda b: row_status(b, mine) == "cancelled", what="cancelled")
    assert browser.execute_script("return window.gentrainNoReload === true;")
    assert_no_console_errors(browser)

    # Another owner's job: not found (the browser logs the 404 response, and nothing else).
    browser.get(f"{base}/ui/jobs/{theirs}")
    assert "Job not found" in browser.find_element(By.TAG_NAME, "h1").text
    errors = console_errors(browser)
    assert all("404" in str(error["message"]) for error in errors), errors

    # Sign out: back to the sign-in page, and the pages need it again.
    browser.get(f"{base}/ui/")
    browser.find_element(By.CSS_SELECTOR, ".signout-form button").click()
    wait_until(browser, lambda b: b.current_url == f"{base}/ui/signin", what="signed out")
    browser.get(f"{base}/ui/")
    assert browser.current_url.startswith(f"{base}/ui/signin")
    assert_no_console_errors(browser)
