"""The playground page in a real browser: headless Chromium (Debian's chromium and chromium-driver, which
`make test` installs) types a prompt, clicks Generate and sees the completion stream in."""

import os

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


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
    browser.execute_script("arguments[0].value = 1000; arguments[0].dispatchEvent(new Event('input'))", max_tokens)
    browser.find_element(By.ID, "seed").send_keys("3")
    completion = browser.find_element(By.ID, "completion")
    # Count the times the completion's text changes: streamed, it grows piece by piece, not once at the end.
    browser.execute_script("window.updates = 0; new MutationObserver(() => window.updates++)"
                           ".observe(arguments[0], {childList: true, characterData: true, subtree: true})",
                           completion)
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda d: d.execute_script("return window.updates") > 0)
    wait.until(lambda d: d.find_element(By.ID, "generate").is_enabled())
    assert browser.execute_script("return window.updates") > 3
    final = completion.get_attribute("textContent")
    assert len(final) == 1000  # a char model: one character per token
    assert browser.find_element(By.ID, "echo").text == "Mowgli said"
    assert "1000 tokens" in browser.find_element(By.ID, "stats").text
    assert not browser.find_element(By.ID, "error").is_displayed()

    chip = browser.find_element(By.CSS_SELECTOR, "#chips .chip span")
    word = chip.get_attribute("textContent")
    chip.click()
    assert browser.find_element(By.ID, "prompt").get_attribute("value") == "Mowgli said" + word
    screenshot = os.environ.get("RNNLAB_PLAYGROUND_SCREENSHOT")
    browser.save_screenshot(screenshot or str(tmp_path / "playground.png"))
