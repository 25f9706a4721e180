"""Serving under load: 64 concurrent streaming clients of `rnnlab serve` against offline batch-64 generation.

    python benchmarks/serve_load.py [--model DIR] [--clients 64] [--tokens 256] [--time-limit 300]

Starts `rnnlab serve` on a free loopback port (--max-batch = --clients), then --clients clients each
stream one completion of --tokens tokens at once (temperature 0.8, top-p 0.9, a different prompt and
seed each), bounded by --time-limit seconds. `aggregate_tokens_per_s`: tokens all clients received over
the wall time from the first request to the last [DONE]; `p50/p99_first_token_ms`: from a client's
request to its first text. Then, with the server stopped, the same model generates --clients samples
of --tokens tokens as one offline batch (`LanguageModel.sample`); `ratio_to_offline` is the first rate
over the second (`threads`: the offline run's; `server_threads`: the decode loop's). Goals (issue #11):
ratio >= 0.7, p99 time to first token <= 250 ms, 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

PROMPTS = ["Mowgli", "The wolf", "Bagheera said", "In the jungle", "Baloo", "Shere Khan", "The river",
           "At night"]


def start_server(model: str | None, clients: int, tokens: int, timeout: float,
                 stream_interval_ms: float | None, threads: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "rnnlab", "serve", *([model] if model else []), "--port", "0",
               "--max-batch", str(clients), "--max-queue", str(4 * clients),
               "--max-tokens-limit", str(max(tokens, 16)), "--timeout", str(timeout),
               "--threads", str(threads),
               *([] if stream_interval_ms is None else ["--stream-interval-ms", str(stream_interval_ms)])]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    url: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        for line in proc.stderr:
            found = re.search(r"http://[\d.]+:\d+", line)
            if found and not url:
                url.append(found.group(0))
            if "ready" in line:
                ready.set()
            if "error" in line:
                print(line, end="", file=sys.stderr)
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(300) or not url or proc.poll() is not None:
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, url[0]


async def one_client(client, url: str, i: int, tokens: int, model: str) -> tuple[float | None, int, str | None]:
    body = {"model": model, "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": tokens, "temperature": 0.8,
            "top_p": 0.9, "seed": i, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first, received, done = None, 0, False
    try:
        async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
            if response.status_code != 200:
                return None, 0, f"HTTP {response.status_code}"
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: "):]
                if data == "[DONE]":
                    done = True
                    break
                # The clients share the server's CPUs: only the chunks that matter are parsed.
                if first is None and '"text": ""' not in data:
                    first = time.perf_counter() - started
                if '"usage"' in data or '"error"' in data:
                    chunk = json.loads(data)
                    if "error" in chunk:
                        return first, received, chunk["error"]["message"]
                    received = chunk["usage"]["completion_tokens"]
    except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure as an error
        return first, received, f"{type(exc).__name__}: {exc}"
    return first, received, None if done and received == tokens else f"ended after {received} tokens"


async def load(url: str, clients: int, tokens: int, time_limit: float, model: str) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=time_limit, limits=limits) as client:
        started = time.perf_counter()
        tasks = [one_client(client, url, i, tokens, model) for i in range(clients)]
        try:
            results = await asyncio.wait_for(asyncio.gather(*tasks), time_limit)
        except TimeoutError:
            return {"errors": clients, "error_kinds": ["time limit"], "seconds": time_limit}
        seconds = time.perf_counter() - started
    firsts = sorted(f for f, _, _ in results if f is not None)
    errors = [e for _, _, e in results if e is not None]

    def quantile(q: float) -> float | None:
        return round(1000 * firsts[min(len(firsts) - 1, int(q * len(firsts)))], 1) if firsts else None

    total = sum(n for _, n, _ in results)
    return {"aggregate_tokens_per_s": round(total / seconds, 1), "tokens_received": total,
            "seconds": round(seconds, 3), "p50_first_token_ms": quantile(0.5), "p99_first_token_ms": quantile(0.99),
            "errors": len(errors), "error_kinds": sorted(set(errors))[:5]}


def offline_tokens_per_s(model: str | None, clients: int, tokens: int) -> float:
    import rnnlab

    lm = rnnlab.load(model)
    lm.sample("Mowgli", length=16, num_samples=clients, temperature=0.8, top_p=0.9, seed=0)  # warm up
    best = 0.0
    for round_ in range(3):
        started = time.perf_counter()
        lm.sample("Mowgli", length=tokens, num_samples=clients, temperature=0.8, top_p=0.9, seed=round_)
        best = max(best, clients * tokens / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="model directory (default: the packaged default model)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--stream-interval-ms", type=float, default=None,
                        help="passed to rnnlab serve (default: the server's own default)")
    parser.add_argument("--server-threads", type=int, default=None,
                        help="rnnlab serve --threads (default: the server's own default, one fewer than the CPUs)")
    args = parser.parse_args()
    from rnnlab.serve.command import default_threads

    server_threads = args.server_threads or default_threads()
    name = "default" if args.model in (None, "default") else Path(args.model).resolve().name
    proc, url = start_server(args.model, args.clients, args.tokens, args.time_limit, args.stream_interval_ms,
                             server_threads)
    try:
        asyncio.run(load(url, 2, 8, 60, name))  # warm up: imports, first steps
        served = asyncio.run(load(url, args.clients, args.tokens, args.time_limit, name))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    offline = offline_tokens_per_s(args.model, args.clients, args.tokens)
    ratio = served.get("aggregate_tokens_per_s", 0.0) / offline
    print(f"served {served.get('aggregate_tokens_per_s')} tokens/s to {args.clients} streaming clients, "
          f"offline batch-{args.clients} {offline:.1f} tokens/s: ratio {ratio:.2f}; first token p50 "
          f"{served.get('p50_first_token_ms')} ms, p99 {served.get('p99_first_token_ms')} ms; "
          f"{served.get('errors')} errors", file=sys.stderr)
    emit({"benchmark": "serve_load", "model": name, "clients": args.clients, "tokens_per_client": args.tokens,
          "stream_interval_ms": args.stream_interval_ms, **served, "offline_tokens_per_s": round(offline, 1), "ratio_to_offline": round(ratio, 3),
          "server_threads": server_threads, "threads": torch.get_num_threads(), "cpus": os.cpu_count()})


if __name__ == "__main__":
    main()
