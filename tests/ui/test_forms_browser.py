"""The new-job form and the datasets pages in headless Chromium against real processes: a job
submitted through the form lands on its page; ``epochs = -1`` shows the API's error next to the
epochs field; a dataset uploaded with the form is listed and its page shows its images and
labels; signed in with keys, both forms carry the session's CSRF token. No console errors (but
the answer the test provoked); a screenshot per test."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from shared.api_keys import create_key
from tests.conftest import REDIS_URL
from tests.e2e.conftest import Service
from tests.e2e.stack import FullStack
from tests.e2e.test_training_flow import upload_mnist
from tests.ui.browser import LAPTOP, PHONE, assert_no_console_errors, console_errors, wait_until
from tests.ui.test_job_browser import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

JOB_PAGE = re.compile(r"/ui/jobs/([0-9a-f]+)$")


def set_value(driver: WebDriver, element_id: str, value: str) -> WebElement:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)
    return field


def digits_file(tmp_path: Path, mnist_path: Path, count: int = 100) -> Path:
    """The first ``count`` real digits with their labels as an .npz to upload."""
    with np.load(mnist_path) as data:
        arrays = {"x_train": data["x_train"][:count], "y_train": data["y_train"][:count]}
    path = tmp_path / f"digits-{count}.npz"
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    path.write_bytes(buffer.getvalue())
    return path


def only_the_answer(driver: WebDriver, status: int) -> None:
    """No console error but the browser's note of the ``status`` response the test provoked."""
    errors = console_errors(driver)
    assert all(f"status of {status}" in str(error["message"]) for error in errors), errors


def visible_error(driver: WebDriver, selector: str) -> str:
    node = driver.find_element(By.CSS_SELECTOR, selector)
    return str(node.text) if node.is_displayed() else ""


def fits_a_phone(driver: WebDriver) -> None:
    """The page, reloaded at a phone's width, does not scroll sideways."""
    driver.set_window_size(*PHONE)
    try:
        driver.refresh()
        width = driver.execute_script("return document.documentElement.scrollWidth;")
        assert width <= PHONE[0] + 1, f"the page scrolls sideways at a phone's width: {width}"
    finally:
        driver.set_window_size(*LAPTOP)


def landed_job(driver: WebDriver) -> str:
    match = wait_until(driver, lambda b: JOB_PAGE.search(b.current_url), what="the job's page")
    assert match is not None
    return match.group(1)


def test_a_job_submitted_through_the_form_lands_on_its_page(
    browser: WebDriver, embedded_service: Service, mnist_path: Path
) -> None:
    service = embedded_service
    upload_mnist(service, mnist_path)
    browser.get(f"{service.url}/ui/new")
    kind = Select(browser.find_element(By.ID, "kind"))
    assert kind.first_selected_option.get_attribute("value") == "autoencoder"
    dataset = Select(browser.find_element(By.ID, "dataset"))
    assert dataset.first_selected_option.get_attribute("value") == "mnist"
    set_value(browser, "param-autoencoder-epochs", "1")
    set_value(browser, "param-autoencoder-max_train_images", "256")
    set_value(browser, "param-autoencoder-learning_rate", "0.002")
    browser.find_element(By.ID, "param-autoencoder-shuffle").click()  # off
    screenshot(browser, "new_job.form", "new_job")
    browser.find_element(By.ID, "submit-job").click()
    job_id = landed_job(browser)
    wait_until(browser, lambda b: b.find_element(By.ID, "job-title"), what="the job's title")
    assert "autoencoder" in browser.find_element(By.ID, "job-title").text
    job = requests.get(f"{service.url}/v1/jobs/{job_id}", timeout=10).json()
    assert job["kind"] == "autoencoder" and job["dataset"] == "mnist"
    params = job["params"]
    assert params["epochs"] == 1 and params["max_train_images"] == 256
    assert params["learning_rate"] == 0.002 and params["shuffle"] is False
    assert params["encoding_dim"] == 32  # the rest as shown: the defaults
    assert_no_console_errors(browser)

    # Run again: the form comes back with this job's values.
    browser.get(f"{service.url}/ui/new?from={job_id}")
    field = browser.find_element(By.ID, "param-autoencoder-max_train_images")
    assert field.get_attribute("value") == "256"
    assert not browser.find_element(By.ID, "param-autoencoder-shuffle").is_selected()
    fits_a_phone(browser)
    assert_no_console_errors(browser)


def test_epochs_minus_one_shows_the_apis_error_next_to_the_field(
    browser: WebDriver, embedded_service: Service, mnist_path: Path
) -> None:
    service = embedded_service
    upload_mnist(service, mnist_path)
    browser.get(f"{service.url}/ui/new")
    kind = Select(browser.find_element(By.ID, "kind"))
    kind.select_by_value("gan")
    assert browser.find_element(By.ID, "param-gan-steps").is_displayed()
    assert not browser.find_element(By.ID, "param-autoencoder-epochs").is_displayed()
    assert "GAN" in browser.find_element(By.ID, "kind-help").text
    kind.select_by_value("autoencoder")
    epochs = set_value(browser, "param-autoencoder-epochs", "-1")
    browser.find_element(By.ID, "submit-job").click()
    selector = '#params-autoencoder [data-field="params.epochs"] .field-error'
    message = wait_until(browser, lambda b: visible_error(b, selector), what="the field error")
    assert message == "params.epochs must be at least 1"
    assert epochs.get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element == epochs
    assert browser.current_url == f"{service.url}/ui/new"  # nothing submitted
    assert browser.find_element(By.ID, "submit-job").is_enabled()
    only_the_answer(browser, 422)
    # Typing into the field clears its error.
    epochs.send_keys("0")
    assert not browser.find_element(By.CSS_SELECTOR, selector).is_displayed()


def test_a_dataset_uploaded_with_the_form_is_listed_and_shown(
    browser: WebDriver, embedded_service: Service, mnist_path: Path, tmp_path: Path
) -> None:
    service = embedded_service
    browser.get(f"{service.url}/ui/datasets")
    # A file that is not an .npz: the API's error, next to the file field.
    bad = tmp_path / "notes.npz"
    bad.write_bytes(b"not a zip archive")
    browser.find_element(By.ID, "upload-file").send_keys(str(bad))
    browser.find_element(By.ID, "upload-button").click()
    error = wait_until(
        browser, lambda b: visible_error(b, '[data-field="file"] .field-error'), what="file error"
    )
    assert "not an .npz" in error
    only_the_answer(browser, 422)

    good = digits_file(tmp_path, mnist_path)
    browser.find_element(By.ID, "upload-file").send_keys(str(good))
    set_value(browser, "upload-name", "first-digits")
    browser.find_element(By.ID, "upload-button").click()
    row = 'tr[data-dataset="first-digits"]'
    wait_until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, row), what="the new row")
    assert browser.find_element(By.ID, "upload-bar").get_attribute("value") == "1"
    assert "Uploaded first-digits (100 images)" in browser.find_element(By.ID, "upload-done").text
    cells = browser.find_element(By.CSS_SELECTOR, row).text
    assert "100 × 28 × 28 uint8" in cells and "y_train" in cells
    assert not browser.find_element(
        By.CSS_SELECTOR, '[data-field="file"] .field-error'
    ).is_displayed()
    assert not browser.find_element(By.ID, "upload-progress").is_displayed()
    assert_no_console_errors(browser)
    screenshot(browser, "datasets.list", "datasets")
    fits_a_phone(browser)

    browser.find_element(By.CSS_SELECTOR, f"{row} a").click()
    wait_until(browser, lambda b: b.current_url.endswith("/ui/datasets/first-digits"), what="page")
    loaded = (
        "const i = document.getElementById('dataset-grid'); return i.complete && i.naturalWidth;"
    )
    width = wait_until(browser, lambda b: b.execute_script(loaded), what="the grid image")
    assert width == 8 * 56
    bars = browser.find_elements(By.CSS_SELECTOR, "#label-histogram tbody tr")
    assert len(bars) == 10
    counts = [int(bar.get_attribute("data-count") or 0) for bar in bars]
    with np.load(mnist_path) as data:
        assert counts == np.bincount(data["y_train"][:100], minlength=10).tolist()
    assert_no_console_errors(browser)
    screenshot(browser, "datasets.page", "dataset")
    fits_a_phone(browser)
    assert_no_console_errors(browser)


@pytest.fixture(scope="module")
def keyed_api(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[FullStack]:
    """The API with keys required on PostgreSQL, Redis and S3 (no worker: jobs stay queued)."""
    stack = FullStack(
        tmp_path_factory.mktemp("keyed-forms"), s3_endpoint, broker_url=REDIS_URL, auth="required"
    )
    try:
        stack.start_api()
        yield stack
    finally:
        stack.close()


def test_signed_in_both_forms_carry_the_csrf_token(
    browser: WebDriver, keyed_api: FullStack, mnist_path: Path, tmp_path: Path
) -> None:
    base = keyed_api.url
    _, alice = create_key(keyed_api.settings.database_url, "alice")
    browser.get(f"{base}/ui/datasets")
    browser.find_element(By.ID, "key").send_keys(alice)
    browser.find_element(By.ID, "signin-button").click()
    wait_until(browser, lambda b: b.current_url == f"{base}/ui/datasets", what="signed in")

    browser.find_element(By.ID, "upload-file").send_keys(str(digits_file(tmp_path, mnist_path)))
    browser.find_element(By.ID, "upload-button").click()
    row = 'tr[data-dataset="digits-100"]'
    wait_until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, row), what="the new row")

    browser.get(f"{base}/ui/new?kind=classifier")
    assert Select(browser.find_element(By.ID, "dataset")).first_selected_option.text.startswith(
        "digits-100"
    )
    set_value(browser, "param-classifier-epochs", "1")
    browser.find_element(By.ID, "submit-job").click()
    job_id = landed_job(browser)
    job = requests.get(
        f"{base}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {alice}"}, timeout=10
    ).json()
    assert job["kind"] == "classifier" and job["dataset"] == "digits-100"
    assert job["status"] == "queued" and job["params"]["epochs"] == 1
    assert_no_console_errors(browser)
