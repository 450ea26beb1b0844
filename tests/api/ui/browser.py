"""A real browser for the pages' tests: Debian's chromium, headless, driven through its own
chromedriver by selenium (never Selenium Manager: the driver's path is given, so nothing is
downloaded). `.ci/run` installs both packages; without them the tests skip, which CI fails.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1200, 900


def installed() -> tuple[str, str]:
    browser = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    driver = shutil.which("chromedriver") or (CHROMEDRIVER if Path(CHROMEDRIVER).exists() else None)
    if browser is None or driver is None:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install both)")
    return browser, driver


@contextlib.contextmanager
def chromium():
    """A headless chromium whose console messages `console_errors` can read."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = installed()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list[dict]:
    """The console's errors since the last call (a CSP violation, a failed load, a script error)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver, path: Path) -> Path:
    """The whole page as a PNG: the window stretched to the document's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(max(height, 400), 4000))
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, HEIGHT)
    return path
