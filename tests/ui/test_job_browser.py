"""The job and compare pages in headless Chromium against real processes (``gentrain up``: API,
a training and a sampling worker): a job's chart gains points as it trains without a reload, its
final grid loads, a running job is cancelled with the button, samples are drawn, and the compare
page overlays two jobs' curves; no page logs a JavaScript error.

The training worker runs one job at a time, so a job queued behind a running one is still queued
when its page opens: the page sees every epoch arrive, whatever the machine's speed."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.conftest import Service
from tests.e2e.test_training_flow import upload_mnist, wait_for
from tests.ui.browser import REPOSITORY, assert_no_console_errors, save_screenshot, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# The README's pictures are remade only when asked: GENTRAIN_DOCS_SCREENSHOTS=1.
DOCS = REPOSITORY / "docs" / "screenshots"

# A sample grid's cell: 28 px at 2×2 screen pixels each.
CELL = 28 * 2

# Tiny trainings: 1,000 images, a fraction of a second an epoch here.
SMALL = {"max_train_images": 1000}


def submit(service: Service, **params: Any) -> str:
    body = {"kind": "autoencoder", "dataset": "mnist", "params": {**SMALL, **params}}
    response = requests.post(f"{service.url}/v1/jobs", json=body, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def screenshot(driver: WebDriver, name: str, docs: str | None = None) -> None:
    """Save the page as a test artifact (and as docs/screenshots/<docs>.png when asked)."""
    save_screenshot(driver, name)
    if docs and os.environ.get("GENTRAIN_DOCS_SCREENSHOTS") == "1":
        # The whole page (up to 2,400 px tall), at the laptop width.
        width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
        tall = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(int(tall) + 120, 2400))
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(save_screenshot(driver, f"{name}.whole"), DOCS / f"{docs}.png")
        driver.set_window_size(width, height)


def status_of(driver: WebDriver) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, "#job-status .badge").text)


def points(driver: WebDriver) -> int:
    return int(driver.find_element(By.ID, "charts").get_attribute("data-points") or 0)


def image_loaded(driver: WebDriver, selector: str, index: int = 0) -> bool:
    """Whether the ``index``-th image matching ``selector`` has loaded (naturalWidth > 0)."""
    return bool(
        driver.execute_script(
            "const i = document.querySelectorAll(arguments[0])[arguments[1]];"
            "return !!i && i.complete && i.naturalWidth > 0;",
            selector,
            index,
        )
    )


@pytest.fixture(scope="module")
def mnist(embedded_service: Service, mnist_path: Any) -> str:
    return upload_mnist(embedded_service, mnist_path)


def test_the_job_page_follows_training_and_a_running_job_is_cancelled(
    embedded_service: Service, mnist: str, driver: WebDriver
) -> None:
    service = embedded_service
    blocker = submit(service, epochs=500)
    wait_for(service, blocker, until={"running"})
    job_id = submit(service, epochs=5, sample_every=1)  # queued behind the blocker
    driver.get(f"{service.url}/ui/jobs/{job_id}")
    assert status_of(driver) == "queued" and points(driver) == 0
    driver.execute_script("window.notReloaded = true")
    page = driver.current_window_handle

    # The running job, cancelled with its button in another tab.
    driver.switch_to.new_window("tab")
    driver.get(f"{service.url}/ui/jobs/{blocker}")
    assert status_of(driver) == "running"
    driver.find_element(By.ID, "cancel-button").click()
    wait_until(driver, lambda d: status_of(d) == "cancelled", 120)
    timeline = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#timeline .badge")]
    assert timeline[-1] == "cancelled" and not driver.find_elements(By.ID, "cancel-button")
    screenshot(driver, "test_job_browser.job-cancelled")
    assert_no_console_errors(driver)
    driver.close()

    # The queued job then trains; its page gains every epoch without a reload.
    driver.switch_to.window(page)
    wait_until(driver, lambda d: status_of(d) == "succeeded", 180)
    assert driver.execute_script("return window.notReloaded") is True
    assert points(driver) == 5
    assert driver.find_element(By.ID, "grid-slider").get_attribute("max") == "4"
    wait_until(driver, lambda d: image_loaded(d, "#final-grid-image"), 30)
    wait_until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#result-table"), 30)
    assert "epoch 5/5" in driver.find_element(By.ID, "log").text
    screenshot(driver, "test_job_browser.job", docs="job")
    assert_no_console_errors(driver)


def test_samples_are_drawn_from_the_job_page(
    embedded_service: Service, mnist: str, driver: WebDriver
) -> None:
    service = embedded_service
    job_id = submit(service, epochs=1)
    assert wait_for(service, job_id)["status"] == "succeeded"
    driver.get(f"{service.url}/ui/jobs/{job_id}")
    form = driver.find_element(By.ID, "draw-form")
    count = form.find_element(By.NAME, "count")
    count.clear()
    count.send_keys("8")
    form.find_element(By.TAG_NAME, "button").click()
    wait_until(driver, lambda d: image_loaded(d, "#draw-result img"), 120)
    caption = driver.find_element(By.CSS_SELECTOR, "#draw-result figcaption").text
    assert "count 8, seed 0" in caption and "succeeded" in caption
    assert_no_console_errors(driver)


def test_a_conditional_gans_digits_are_drawn_a_row_each(
    embedded_service: Service, mnist: str, driver: WebDriver
) -> None:
    """The draw form's digits field ("7,3") reaches the sampling job as a list: its grid has a
    row of ``count`` samples per digit asked for."""
    service = embedded_service
    params = {"steps": 4, "steps_per_epoch": 2, "batch_size": 32, "sample_every": 0}
    params |= {"conditional": True, "architecture": "dcgan", "quality_samples": 0}
    body = {"kind": "gan", "dataset": "mnist", "params": {**SMALL, **params}}
    response = requests.post(f"{service.url}/v1/jobs", json=body, timeout=10)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert wait_for(service, job_id)["status"] == "succeeded"
    driver.get(f"{service.url}/ui/jobs/{job_id}")
    form = driver.find_element(By.ID, "draw-form")
    for name, value in (("count", "4"), ("digits", "7,3")):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    form.find_element(By.TAG_NAME, "button").click()
    wait_until(driver, lambda d: image_loaded(d, "#draw-result img"), 120)
    caption = driver.find_element(By.CSS_SELECTOR, "#draw-result figcaption").text
    assert "count 4, seed 0, digits 7,3" in caption and "succeeded" in caption
    size = driver.execute_script(
        "const i = document.querySelector('#draw-result img');"
        "return [i.naturalHeight, i.naturalWidth];"
    )
    assert size == [2 * CELL, 4 * CELL]  # two rows (7s, then 3s) of four
    screenshot(driver, "test_job_browser.conditional_draw")
    assert_no_console_errors(driver)


def test_the_compare_page_overlays_two_jobs(
    embedded_service: Service, mnist: str, driver: WebDriver
) -> None:
    service = embedded_service
    jobs = [submit(service, epochs=2), submit(service, epochs=3, encoding_dim=16)]
    for job_id in jobs:
        assert wait_for(service, job_id)["status"] == "succeeded"
    driver.get(f"{service.url}/ui/compare?jobs={','.join(jobs)}")
    charts = driver.find_elements(By.CSS_SELECTOR, "#compare-charts .chart")
    assert [c.get_attribute("data-chart") for c in charts] == ["loss", "val_loss"]
    assert {c.get_attribute("data-points") for c in charts} == {"3"}  # epochs 1-3 of either
    legend = charts[0].find_element(By.CSS_SELECTOR, ".u-legend").text
    assert jobs[0][:8] in legend and jobs[1][:8] in legend
    differs = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#params .differs th"))
    assert "epochs" in differs and "encoding_dim" in differs and "batch_size" not in differs
    grids = ".gallery figure img"
    wait_until(driver, lambda d: all(image_loaded(d, grids, i) for i in (0, 1)), 30, "two grids")
    screenshot(driver, "test_job_browser.compare", docs="compare")
    assert_no_console_errors(driver)
