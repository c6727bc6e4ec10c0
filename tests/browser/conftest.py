"""Headless Chromium for the browser tests, driven by Selenium.

Debian's `chromium` and `chromium-driver` packages: `.ci/run` installs them.
Nothing is downloaded: the driver and browser paths are given explicitly and
Selenium Manager is told to stay offline. When they are missing the tests
fail (never skip), saying how to install them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("BENTO_CHROMIUM", "/usr/bin/chromium")
#: A name Chromium resolves to 127.0.0.1 itself, as a DNS-rebinding attacker
#: makes theirs do: the emulator sees it as the request's Host.
REBOUND_NAME = "rebound.example"
CHROMEDRIVER = os.environ.get("BENTO_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = (
    "run .ci/run, or install them: "
    "apt-get update && apt-get install -y chromium chromium-driver; "
    "and the dev extra for selenium: pip install -e '.[dev]'"
)


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"the browser test needs {' and '.join(missing)}: {INSTALL_HINT}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: `$BENTO_ARTIFACTS` (CI keeps it), else pytest's
    temporary directory."""
    chosen = os.environ.get("BENTO_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the session (starting it takes a second)."""
    _require_browser()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"the browser test needs selenium: {INSTALL_HINT}", pytrace=False)
    # Selenium Manager would try to download a driver or browser it thinks is
    # missing; there is no network for that in CI, and both are given below.
    previous = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Console messages (script errors, CSP violations) for the tests to check.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers have a tiny /dev/shm
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--window-size=1280,900",
        f"--host-resolver-rules=MAP {REBOUND_NAME} 127.0.0.1",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(
            service=Service(executable_path=CHROMEDRIVER), options=options
        )
    finally:
        if previous is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = previous
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
