"""`rnnlab serve`: the command-line flags, model names, and uvicorn started on the app."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from rnnlab.errors import ConfigError, RnnlabError

__all__ = ["register", "cmd_serve", "model_dirs"]


def register(sub) -> None:
    p = sub.add_parser("serve", help="an OpenAI-compatible HTTP server (completions, streaming) with a playground page")
    p.add_argument("models", nargs="*", metavar="MODEL_DIR",
                   help="model directories, each served under its folder's name (none: the default model)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=DIR", dest="named",
                   help="serve DIR under NAME (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-batch", type=int, default=64, dest="max_batch",
                   help="rows decoded together per model (default 64)")
    p.add_argument("--max-queue", type=int, default=256, dest="max_queue",
                   help="requests waiting for a place in the batch before new ones get 429 (default 256)")
    p.add_argument("--max-tokens-limit", type=int, default=2048, dest="max_tokens_limit",
                   help="the largest max_tokens a request may ask for (default 2048)")
    p.add_argument("--max-prompt-chars", type=int, default=20_000, dest="max_prompt_chars",
                   help="longer prompts get 413 (default 20000)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds a request may take, waiting included (default 120)")
    p.add_argument("--stream-interval-ms", type=float, default=25.0, dest="stream_interval_ms",
                   help="a streamed completion's tokens are sent at most this often, several per chunk; the "
                        "first token goes out at once (default 25; 0 sends every token as it comes)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of each model's decode loop (default: one fewer than the CPUs, at least "
                        "1: the event loop and the clients' connections keep the other busy)")
    p.set_defaults(func=cmd_serve)


def model_dirs(positional: list[str], named: list[str]) -> dict[str, str | None]:
    """{name: directory} from MODEL_DIR arguments (named by their folder) and NAME=DIR; none: the default."""
    out: dict[str, str | None] = {}

    def put(name: str, directory: str | None) -> None:
        if not name or any(c.isspace() for c in name):
            raise ConfigError(f"--model needs NAME=DIR with a non-empty name without spaces (got {name!r})")
        if name in out:
            raise ConfigError(f"two models are named {name!r}; name them apart with --model NAME=DIR")
        out[name] = directory

    for directory in positional:
        put("default" if directory == "default" else (Path(directory).resolve().name or directory), directory)
    for item in named:
        name, sep, directory = item.partition("=")
        if not sep or not directory:
            raise ConfigError(f"--model needs NAME=DIR (got {item!r})")
        put(name, directory)
    if not out:
        out["default"] = None
    return out


def _positive(value, flag: str, allow_zero: bool = False) -> None:
    if not (value >= 0 if allow_zero else value > 0) or value != value:
        raise ConfigError(f"{flag} must be {'>= 0' if allow_zero else 'positive'} (got {value})")


def cmd_serve(args: argparse.Namespace) -> int:
    from rnnlab import api
    from rnnlab.serve.protocol import Limits

    for flag, value in (("--max-batch", args.max_batch), ("--max-queue", args.max_queue),
                        ("--max-tokens-limit", args.max_tokens_limit), ("--max-prompt-chars", args.max_prompt_chars),
                        ("--timeout", args.timeout)):
        _positive(value, flag)
    _positive(args.stream_interval_ms, "--stream-interval-ms", allow_zero=True)
    if args.threads is not None:
        _positive(args.threads, "--threads")
    threads = args.threads if args.threads is not None else default_threads()
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be from 0 to 65535 (got {args.port})")
    dirs = model_dirs(args.models, args.named)
    for directory in dirs.values():  # a missing directory is an error now, not after the server started
        path = api.resolve_model_dir(directory)
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} is not a model directory (it holds no config.json)")
    try:
        import uvicorn
    except ImportError as exc:
        raise RnnlabError("rnnlab serve needs FastAPI and uvicorn: pip install 'rnnlab[serve]'") from exc
    from rnnlab.serve.app import create_app

    listener = _bind(args.host, args.port)
    host, port = listener.getsockname()[:2]
    failed: list[str] = []
    server: uvicorn.Server | None = None

    def loader():
        try:
            models = {name: _load(directory, args.device) for name, directory in dirs.items()}
        except RnnlabError as exc:
            failed.append(exc.message)
            server.should_exit = True
            raise
        print(f"rnnlab serve: {', '.join(dirs)} loaded; ready", file=sys.stderr, flush=True)
        return models

    limits = Limits(max_batch=args.max_batch, max_queue=args.max_queue, max_tokens_limit=args.max_tokens_limit,
                    max_prompt_chars=args.max_prompt_chars, timeout=args.timeout,
                    stream_interval=args.stream_interval_ms / 1000, threads=threads)
    app = create_app(loader=loader, limits=limits)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    print(f"rnnlab serve: listening on http://{host}:{port} (models: {', '.join(dirs)}; loading)",
          file=sys.stderr, flush=True)
    # The decode loop releases the GIL inside every tensor op and must win it back after each one; with
    # Python's 5 ms switch interval a busy event loop (64 clients' requests) kept it waiting that long
    # per op. 1 ms gave the loop ~1.3x the served tokens/s at 64 streaming clients (benchmarks/serve_load.py).
    sys.setswitchinterval(0.001)
    server.run(sockets=[listener])
    if failed:
        raise RnnlabError(failed[0])
    return 0


def default_threads() -> int:
    """One fewer than the CPUs this process may use, at least 1, at most torch's own default.

    A decode step's matrix products split across torch's threads, and each waits for the slowest; on a
    machine whose every core also runs the event loop, the JSON of the streamed chunks and the clients'
    connections, a thread that loses its core stalls the step. At 64 streaming clients on 2 CPUs one
    decode thread served 3,605 tokens/s against two threads' 2,945 (means of 5 and 6 runs of
    benchmarks/serve_load.py on one machine)."""
    import torch

    from rnnlab._machine import usable_cpus

    return max(1, min(usable_cpus() - 1, torch.get_num_threads()))


def _load(directory: str | None, device: str):
    """A language model, or a forecaster where the directory holds one (its config.json names a "kind")."""
    from rnnlab import _io, api

    path = api.resolve_model_dir(directory)
    config = _io.read_json(path / "config.json")
    if isinstance(config, dict) and "kind" in config and "model" not in config:
        try:
            from rnnlab.forecasting.forecasters import load_forecaster
        except ImportError as exc:
            raise RnnlabError(f"{path} holds a forecasting model, which needs the forecast extra: "
                              "pip install 'rnnlab[forecast]'") from exc
        return load_forecaster(path)
    return api.load(path, device=device)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is a one-line error."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise RnnlabError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock
