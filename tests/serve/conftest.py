"""A live `rnnlab serve` on a free loopback port, serving the session's tiny char and word models."""

from pathlib import Path

import pytest

from .live import running_server


@pytest.fixture(scope="session")
def server(char_model_dir, word_model_dir):
    """The URL of a server with models "char" and "word" (small limits, so tests can reach them)."""
    with running_server("--model", f"char={char_model_dir}", "--model", f"word={word_model_dir}",
                        "--max-batch", "8", "--max-queue", "32", "--max-tokens-limit", "100000",
                        "--max-prompt-chars", "2000") as (url, _lines):
        yield url



CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by selenium (Debian's chromium and chromium-driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and DRIVER.exists(), \
        "the browser test needs Debian's chromium and chromium-driver (make test installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900", "--disable-extensions", "--no-first-run"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    yield driver
    driver.quit()
