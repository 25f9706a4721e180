"""The playground page in a real browser: headless Chromium (Debian's chromium and chromium-driver, which
`make test` installs) types a prompt, clicks Generate and sees the completion stream in."""

import os
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser():
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


def test_typing_a_prompt_and_clicking_generate_streams_the_completion(browser, server, tmp_path):
    browser.get(server)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2)
    Select(browser.find_element(By.ID, "model")).select_by_value("char")
    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("Mowgli said")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#chips .chip")))  # next-word suggestions
    max_tokens = browser.find_element(By.ID, "max-tokens")
    browser.execute_script("arguments[0].value = 400; arguments[0].dispatchEvent(new Event('input'))", max_tokens)
    browser.find_element(By.ID, "seed").send_keys("3")
    completion = browser.find_element(By.ID, "completion")
    # Count the times the completion's text changes: streamed, it grows piece by piece, not once at the end.
    browser.execute_script("window.updates = 0; new MutationObserver(() => window.updates++)"
                           ".observe(arguments[0], {childList: true, characterData: true, subtree: true})",
                           completion)
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda d: d.execute_script("return window.updates") > 0)
    wait.until(lambda d: d.find_element(By.ID, "generate").is_enabled())
    assert browser.execute_script("return window.updates") > 5
    final = completion.get_attribute("textContent")
    assert len(final) == 400  # a char model: one character per token
    assert browser.find_element(By.ID, "echo").text == "Mowgli said"
    assert "400 tokens" in browser.find_element(By.ID, "stats").text
    assert not browser.find_element(By.ID, "error").is_displayed()

    chip = browser.find_element(By.CSS_SELECTOR, "#chips .chip span")
    word = chip.get_attribute("textContent")
    chip.click()
    assert browser.find_element(By.ID, "prompt").get_attribute("value") == "Mowgli said" + word
    screenshot = os.environ.get("RNNLAB_PLAYGROUND_SCREENSHOT")
    browser.save_screenshot(screenshot or str(tmp_path / "playground.png"))
