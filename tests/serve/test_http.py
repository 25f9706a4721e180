"""`rnnlab serve` over plain HTTP: curl, closed streams, limits, errors in OpenAI's shape, health, metrics."""

import json
import shutil
import subprocess
import sys
import threading
import time

import httpx
import pytest

from .live import metric, running_server


def _wait_for(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_streams_events_that_end_with_done(server):
    out = subprocess.run(["curl", "-sN", f"{server}/v1/completions", "-H", "Content-Type: application/json",
                          "-d", json.dumps({"model": "char", "prompt": "Mowgli", "max_tokens": 8, "stream": True})],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    events = [block for block in out.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) and chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_a_closed_stream_frees_its_row_at_the_next_step(server):
    before = metric(server, "rnnlab_cancelled_total", model="char")
    body = {"model": "char", "prompt": "Mowgli", "max_tokens": 100000, "stream": True}
    with httpx.stream("POST", f"{server}/v1/completions", json=body, timeout=60) as response:
        lines = response.iter_lines()
        got = [next(lines) for _ in range(6)]  # three data lines with their blank separators
        assert got[0].startswith("data: ")
        assert metric(server, "rnnlab_batch_rows", model="char") == 1
    # 100,000 tokens would take minutes; the closed stream leaves the batch at once.
    assert _wait_for(lambda: metric(server, "rnnlab_batch_rows", model="char") == 0, 20)
    assert metric(server, "rnnlab_cancelled_total", model="char") == before + 1


def test_metrics_count_requests_tokens_and_latencies(server):
    httpx.post(f"{server}/v1/completions", json={"model": "word", "prompt": "the", "max_tokens": 4}, timeout=60)
    text = httpx.get(f"{server}/metrics").text
    for name in ("rnnlab_requests_total", "rnnlab_generated_tokens_total", "rnnlab_batch_rows",
                 "rnnlab_queue_length", "rnnlab_time_to_first_token_seconds_count"):
        assert f"# TYPE {name.removesuffix('_count')}" in text and name in text
    assert metric(server, "rnnlab_generated_tokens_total", model="word") >= 4
    assert metric(server, "rnnlab_requests_total", code="200", endpoint="completions") >= 1


@pytest.mark.parametrize("body, status, param", [
    ({"model": "char", "prompt": "x", "max_tokens": -1}, 400, "max_tokens"),
    ({"model": "char", "prompt": "x", "max_tokens": 100001}, 400, "max_tokens"),
    ({"model": "char", "prompt": "x", "n": 0}, 400, "n"),
    ({"model": "char", "prompt": "x", "n": 9}, 400, "n"),  # more rows than --max-batch 8
    ({"model": "char", "prompt": "x", "top_p": 1.5}, 400, "top_p"),
    ({"model": "char", "prompt": "x", "logprobs": 6}, 400, "logprobs"),
    ({"model": "char", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({"model": "char", "prompt": "x", "stop": ""}, 400, "stop"),
    ({"model": "char", "prompt": "x", "seed": -1}, 400, "seed"),
    ({"model": "char", "prompt": "x", "seed": 2**63}, 400, "seed"),
    ({"model": "char", "prompt": "x", "frequency_penalty": 2.5}, 400, "frequency_penalty"),
    ({"model": "char", "prompt": "x", "temperature": "hot"}, 400, "temperature"),
    ({"model": "char", "prompt": [1, 2]}, 400, "prompt"),
    ({"model": "char", "prompt": "x", "stream": "yes"}, 400, "stream"),
    ({"model": "char", "prompt": "x" * 2001}, 413, "prompt"),
    ({"model": "nope", "prompt": "x"}, 404, "model"),
    ([1, 2], 400, None),
])
def test_bad_requests_get_openai_errors_never_a_500(server, body, status, param):
    response = httpx.post(f"{server}/v1/completions", json=body, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param and error["message"]


def test_a_body_that_is_not_json_and_an_unknown_route(server):
    response = httpx.post(f"{server}/v1/completions", content=b"\xff{", timeout=30)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    response = httpx.get(f"{server}/v1/nothing-here", timeout=30)
    assert response.status_code == 404 and "error" in response.json()


def test_next_offers_the_likeliest_words(server):
    response = httpx.post(f"{server}/v1/next", json={"model": "char", "prompt": "Mowgli said", "k": 4}, timeout=60)
    candidates = response.json()["candidates"]
    assert len(candidates) == 4
    assert all(c["text"].strip() and " " not in c["text"].strip() for c in candidates)  # whole words
    probabilities = [c["probability"] for c in candidates]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1
    word = httpx.post(f"{server}/v1/next", json={"model": "word", "prompt": "the", "k": 3}, timeout=60).json()
    assert len(word["candidates"]) == 3
    assert httpx.post(f"{server}/v1/next", json={"model": "char", "k": 0}).status_code == 400


def test_a_full_queue_is_a_429(char_model_dir):
    with running_server(str(char_model_dir), "--max-batch", "1", "--max-queue", "1",
                        "--max-tokens-limit", "100000") as (url, _lines):
        name = char_model_dir.name
        long = {"model": name, "prompt": "a", "max_tokens": 100000, "stream": True}
        streams = [httpx.stream("POST", f"{url}/v1/completions", json=long, timeout=60) for _ in range(2)]
        try:
            for stream in streams:  # one runs, one waits
                threading.Thread(target=stream.__enter__, daemon=True).start()
            assert _wait_for(lambda: metric(url, "rnnlab_batch_rows", model=name) == 1
                             and metric(url, "rnnlab_queue_length", model=name) == 1)
            response = httpx.post(f"{url}/v1/completions", json={"model": name, "prompt": "b"}, timeout=30)
            assert response.status_code == 429
            assert response.json()["error"]["type"] == "rate_limit_error"
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)


def test_health_is_503_until_the_models_are_loaded(char_model_dir):
    from fastapi.testclient import TestClient

    import rnnlab
    from rnnlab.serve.app import create_app

    release = threading.Event()

    def loader():
        release.wait(60)
        return {"tiny": rnnlab.load(char_model_dir)}

    with TestClient(create_app(loader=loader)) as client:
        assert client.get("/health").status_code == 503
        response = client.post("/v1/completions", json={"prompt": "x"})
        assert response.status_code == 503 and response.json()["error"]["code"] == "loading"
        release.set()
        assert _wait_for(lambda: client.get("/health").status_code == 200)
        assert client.post("/v1/completions", json={"prompt": "x", "max_tokens": 3}).json()["model"] == "tiny"


def test_the_command_line_refuses_a_missing_model_and_a_taken_port(tmp_path, server):
    run = [sys.executable, "-m", "rnnlab", "serve"]
    out = subprocess.run([*run, str(tmp_path / "none")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not a model directory" in out.stderr
    port = server.rsplit(":", 1)[1]
    out = subprocess.run([*run, "--port", port], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cannot listen" in out.stderr
    out = subprocess.run([*run, "--model", "x"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "NAME=DIR" in out.stderr
    out = subprocess.run([*run, "--stream-interval-ms", "-5"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr == "rnnlab: error: --stream-interval-ms must be >= 0 (got -5.0)\n"


def test_a_request_past_the_timeout_ends_with_what_it_has(char_model_dir):
    from fastapi.testclient import TestClient

    import rnnlab
    from rnnlab.serve.app import create_app
    from rnnlab.serve.protocol import Limits

    app = create_app({"tiny": rnnlab.load(char_model_dir)}, limits=Limits(timeout=1.0, max_tokens_limit=10**6))
    with TestClient(app) as client:
        started = time.monotonic()
        body = client.post("/v1/completions", json={"prompt": "x", "max_tokens": 10**6}).json()
        assert time.monotonic() - started < 20  # a million tokens would take many minutes
        (choice,) = body["choices"]
        assert choice["finish_reason"] == "length" and 0 < body["usage"]["completion_tokens"] < 10**6
        assert len(choice["text"]) == body["usage"]["completion_tokens"]
        assert "rnnlab_timeouts_total" in client.get("/metrics").text
