"""/v1/forecast: a forecasting model served beside a language model, by the same `rnnlab serve`."""

import httpx
import numpy as np
import pytest

from .live import running_server


@pytest.fixture(scope="module")
def served(tmp_path_factory, char_model_dir):
    pytest.importorskip("pandas", reason="forecasting models need the forecast extra")
    from rnnlab.forecasting.forecasters import make_forecaster
    from rnnlab.forecasting.series import from_array

    directory = tmp_path_factory.mktemp("forecaster") / "drift"
    series = from_array(np.arange(20.0) * 2 + 1, start="2026-01-01", freq="D")
    make_forecaster("drift", horizon=3, intervals=(80, 95)).fit(series).save(directory)
    with running_server("--model", f"trend={directory}", "--model", f"text={char_model_dir}") as (url, _):
        yield url


def test_a_forecast_of_the_fitted_series_and_of_new_values(served):
    models = httpx.get(f"{served}/v1/models").json()["data"]
    assert {m["id"]: m["rnnlab"]["kind"] for m in models} == {"trend": "forecast", "text": "text"}
    fitted = httpx.post(f"{served}/v1/forecast", json={"model": "trend"}, timeout=60).json()
    assert fitted["horizon"] == 3 and fitted["columns"] == ["y"]
    assert np.allclose(np.array(fitted["values"])[:, 0], [41, 43, 45])  # drift: the line goes on
    assert fitted["timestamps"][0].startswith("2026-01-21")
    assert np.allclose(np.array(fitted["history"]["values"])[:, 0], np.arange(20.0) * 2 + 1)  # what it followed
    lower, upper = (np.array(fitted["intervals"]["95"][k]) for k in ("lower", "upper"))
    assert (lower <= np.array(fitted["values"])).all() and (upper >= np.array(fitted["values"])).all()

    body = {"model": "trend", "values": [10, 20, 30, 40], "horizon": 2, "levels": [80],
            "timestamps": ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]}
    new = httpx.post(f"{served}/v1/forecast", json=body, timeout=60).json()
    assert np.allclose(np.array(new["values"])[:, 0], [50, 60]) and list(new["intervals"]) == ["80"]
    assert new["timestamps"][0].startswith("2026-03-05")


@pytest.mark.parametrize("body, param", [
    ({"model": "trend", "values": []}, "values"),
    ({"model": "trend", "values": [1, "a"]}, "values"),
    ({"model": "trend", "values": [1, 2], "timestamps": ["x"]}, "timestamps"),
    ({"model": "trend", "values": [1, 2, 3], "timestamps": ["not", "a", "date"]}, "timestamps"),
    ({"model": "trend", "horizon": 0}, "horizon"),
    ({"model": "trend", "levels": [99.5]}, "levels"),
    ({"model": "trend", "levels": [50]}, "levels"),  # not a level this model was fitted with
    ({"model": "text", "values": [1, 2]}, "model"),
])
def test_bad_forecast_requests_are_400s(served, body, param):
    response = httpx.post(f"{served}/v1/forecast", json=body, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_completions_refuse_a_forecasting_model(served):
    response = httpx.post(f"{served}/v1/completions", json={"model": "trend", "prompt": "x"}, timeout=60)
    assert response.status_code == 400 and "use /v1/forecast" in response.json()["error"]["message"]


def test_the_playground_plots_a_forecast_with_its_intervals(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(served)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2)
    Select(browser.find_element(By.ID, "model")).select_by_value("trend")
    assert browser.find_element(By.ID, "forecast-panel").is_displayed()
    assert not browser.find_element(By.ID, "text-panel").is_displayed()
    browser.find_element(By.ID, "series").send_keys("5, 7, 9, 11, 13, 15")
    browser.find_element(By.ID, "horizon").send_keys("4")
    browser.find_element(By.ID, "forecast").click()
    wait.until(lambda d: d.find_elements(By.ID, "forecast-line"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart polygon.band")) == 2  # the 80% and 95% bands
    points = browser.find_element(By.ID, "forecast-line").get_attribute("points").split()
    assert len(points) == 1 + 4  # from the last observation through the 4 forecast steps
    assert "4 steps" in browser.find_element(By.ID, "forecast-stats").text
