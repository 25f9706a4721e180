"""The decode loop's torch threads: `rnnlab serve --threads`, by default one fewer than the CPUs."""

from __future__ import annotations

import subprocess
import sys
import threading

import torch

from rnnlab import _machine
from rnnlab.serve import command


def test_the_default_leaves_a_cpu_to_the_event_loop(monkeypatch):
    for cpus, torch_default, expected in ((2, 2, 1), (1, 1, 1), (16, 8, 8), (4, 4, 3)):
        monkeypatch.setattr(_machine.os, "sched_getaffinity", lambda _pid, n=cpus: set(range(n)))
        monkeypatch.setattr(torch, "get_num_threads", lambda n=torch_default: n)
        assert command.default_threads() == expected, (cpus, torch_default)


def test_the_decode_loop_sets_its_threads_in_its_own_thread(char_model_dir, monkeypatch):
    """OpenMP keeps a thread count per thread: set in the main thread it would not reach the loop."""
    from fastapi.testclient import TestClient

    import rnnlab
    from rnnlab.serve import scheduler
    from rnnlab.serve.app import create_app
    from rnnlab.serve.protocol import Limits

    calls = []
    real = torch.set_num_threads
    monkeypatch.setattr(scheduler.torch, "set_num_threads",
                        lambda n: (calls.append((threading.current_thread().name, n)), real(n))[1])
    before = torch.get_num_threads()
    try:
        app = create_app({"tiny": rnnlab.load(char_model_dir)}, limits=Limits(threads=1))
        with TestClient(app) as client:
            reply = client.post("/v1/completions", json={"model": "tiny", "prompt": "The", "max_tokens": 5,
                                                         "seed": 1})
        assert reply.status_code == 200 and len(reply.json()["choices"][0]["text"]) == 5
    finally:
        real(before)
    assert [n for name, n in calls if name == "rnnlab-serve-tiny"] == [1]  # (loading sets the main thread's)


def test_a_thread_count_below_one_is_a_one_line_error():
    out = subprocess.run([sys.executable, "-m", "rnnlab", "serve", "--threads", "0"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and out.stderr == "rnnlab: error: --threads must be positive (got 0)\n"
