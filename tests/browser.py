"""Headless Chromium for the page tests: Debian's `chromium` and `chromium-driver` driven by Selenium, with
the network switched off. Selenium Manager is never asked for anything: the driver and browser paths are
given explicitly and SE_OFFLINE forbids downloads. `.ci/run` installs both packages where missing."""

import os
import shutil
import time
from pathlib import Path

BROWSERS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVERS = ("/usr/bin/chromedriver",)
INSTALL = "apt-get install -y chromium chromium-driver"


def find(candidates: tuple[str, ...], name: str) -> str | None:
    return next((path for path in candidates if os.access(path, os.X_OK)), None) or shutil.which(name)


def start_chromium(profile: Path, width: int = 1200, height: int = 900):
    """A headless Chromium that cannot reach any network, logging the page's console."""
    browser, driver = find(BROWSERS, "chromium"), find(DRIVERS, "chromedriver")
    if browser is None or driver is None:
        raise RuntimeError(f"the browser tests need Chromium and its driver: {INSTALL}")
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", f"--window-size={width},{height}",
                f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chromium = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    chromium.execute_cdp_cmd("Network.enable", {})
    chromium.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    return chromium


def open_page(chromium, path: Path, timeout: float = 60.0) -> float:
    """Load a page from disk and wait until it says it is ready; returns the wall seconds it took."""
    start = time.perf_counter()
    chromium.get(Path(path).resolve().as_uri())
    while not chromium.execute_script("return !!(window.charrnnViz && window.charrnnViz.ready)"):
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{path} was not ready after {timeout} s")
        time.sleep(0.005)
    return time.perf_counter() - start
