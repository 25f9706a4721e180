"""Helpers for tests of a live `rnnlab serve`: start one on a free loopback port, read its metrics."""

import contextlib
import os
import re
import subprocess
import sys
import threading
import time

import httpx


@contextlib.contextmanager
def running_server(*args: str, timeout: float = 120):
    """Start `rnnlab serve --port 0 ARGS` in a child process; yield (base url, stderr lines) once healthy."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "serve", "--host", "127.0.0.1", "--port", "0", *args],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    found = threading.Event()

    def drain() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "listening on" in line:
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        assert found.wait(timeout), "the server printed nothing"
        match = next((re.search(r"http://[\d.]+:\d+", line) for line in lines if "listening on" in line), None)
        assert match is not None, "".join(lines)
        url = match.group(0)
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, "".join(lines)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, "not healthy in time: " + "".join(lines)
            time.sleep(0.2)
        yield url, lines
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()



def metric(url: str, name: str, **labels: str) -> float:
    """One value from GET /metrics (0 when the series is absent)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.split()[-1])
    return 0.0
