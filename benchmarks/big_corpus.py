"""Corpora larger than memory: peak RSS of `rnnlab prepare` and `rnnlab train TOKENS_DIR` on a 10 MB and a
1 GB corpus, and the tokenisation throughput of `prepare` (issue #14).

    python benchmarks/big_corpus.py [--sizes 10MB,1GB] [--bpe-size 100MB] [--threads default,1]
                                    [--single-file] [--skip-bpe] [--profile auto|always|never]
                                    [--work-dir DIR] [--keep] [--record]

    python benchmarks/big_corpus.py --sizes 1MB,20MB --bpe-size 5MB      # a quick run, about 3 minutes

The corpora are a deterministic reshuffle of the paragraphs (blocks between blank lines) of the books in
../shared/data (pretrain/*.txt, jungle-book.txt, tiny-shakespeare.txt; Gutenberg header and footer
removed): a seeded RNG permutes the paragraphs again and again and writes them into a folder of .txt files
of about 4 MB each (a folder is a corpus of documents to rnnlab), or, with --single-file, into one file.
A fixed validation file (--val-bytes of paragraphs held out of every corpus, the same for all sizes) is
given to `prepare --val-file`, so the training run's evaluation costs the same on every size and the
figures compare memory, not evaluation work.

Every figure is one fresh child process (`python -m rnnlab ...`), its peak resident memory the ru_maxrss
that os.wait4 reports for that child alone (MiB, as Linux's KiB / 1024); corpus sizes and throughput are
in MB of 10^6 bytes (the size of the corpus files, over the wall seconds of the whole `prepare` child):
- `prepare_peak_rss_mb_{size}`, `prepare_s_{size}`: `rnnlab prepare CORPUS -o TOKENS --val-file VAL`
  (char level);
- `peak_rss_mb_{size}`: `rnnlab train TOKENS -o MODEL` with a small fixed model, `--max-steps 200
  --eval-every 200 --sample-every 0 --no-progress`, at torch's default thread count (OMP_NUM_THREADS
  unset, as users run it); `peak_rss_mb_{size}_1thread` under OMP_NUM_THREADS=1;
- `char_mb_per_s`: char `prepare` on the largest size; `bpe_mb_per_s`: BPE `prepare` (default vocabulary)
  on a --bpe-size corpus; `*_per_cpu_s`: the same over the child's CPU seconds (user + system), less
  sensitive to other work on a shared machine (the load averages are recorded too);
- each child's details (`prepare_{size}`, `train_{size}`): wall and CPU seconds, tokens and dtype, and its
  RSS sampled every 0.25 s: a trace, and the sampled peaks of RssAnon and RssFile (the pages of the
  memory-mapped tokens.bin count in RSS as RssFile, with the shared libraries).
With --single-file every per-size key ends in `_single_file`. Where a throughput goal is missed (or with
--profile always), `prepare` runs once more under cProfile on a --profile-size corpus and the functions
with the most own time are reported (`profile_char`, `profile_bpe`).

Goals (issue #14): peak RSS of training on 1 GB within 100 MB of 10 MB; char >= 50 MB/s; BPE >= 5 MB/s.
Everything generated lives in one temporary folder that is removed at the end, also on Ctrl-C or SIGTERM
(unless --keep). `--record` appends the JSON line, with the date and the command, to
benchmarks/results/big-corpus.jsonl.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pstats
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, SHARED_DATA, emit_and_record  # noqa: E402

from rnnlab.data.corpus import strip_gutenberg  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "big-corpus.jsonl"
FILE_BYTES = 4_000_000  # each file of a folder corpus: a few MB, as a real corpus of documents
GOAL_RSS_GROWTH_MB, GOAL_CHAR_MB_PER_S, GOAL_BPE_MB_PER_S = 100.0, 50.0, 5.0
# Small and fixed, the same for every size; regularisation given, so no small-corpus default differs.
TRAIN_FLAGS = ["--layers", "1", "--hidden", "128", "--embedding", "64", "--seq-len", "64", "--batch-size", "32",
               "--dropout", "0", "--embed-dropout", "0", "--no-locked-dropout", "--ar", "0", "--tar", "0",
               "--max-steps", "200", "--eval-every", "200", "--sample-every", "0", "--no-progress"]
_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9}


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB)\s*", text, re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size like 10MB or 1GB: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def size_key(text: str) -> str:
    """'10MB' -> '10mb': the suffix of a size's JSON keys."""
    return text.strip().lower().replace(" ", "")


# ------------------------------------------------------------------------------------------- the corpora

def book_paths(data_dir: Path) -> list[Path]:
    books = sorted((data_dir / "pretrain").glob("*.txt"))
    books += [data_dir / "jungle-book.txt", data_dir / "tiny-shakespeare.txt"]
    missing = [str(p) for p in books if not p.is_file()]
    if missing or len(books) < 3:
        raise SystemExit(f"books missing under {data_dir}: {missing or 'pretrain/*.txt'}")
    return books


def paragraphs(books: list[Path]) -> list[bytes]:
    """Every paragraph of every book, UTF-8, in book order: BOM, CRLF and the Gutenberg header and footer
    removed (one book has a Latin-1 byte: read as U+FFFD)."""
    found: list[bytes] = []
    for book in books:
        text = book.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff").replace("\r\n", "\n")
        for block in re.split(r"\n[ \t]*\n", strip_gutenberg(text)):
            block = block.strip("\n")
            if block.strip():
                found.append(block.encode("utf-8"))
    return found


def hold_out(pool: list[bytes], n_bytes: int, seed: int) -> tuple[list[bytes], list[bytes]]:
    """(paragraphs of about n_bytes picked at random, the others): validation text no corpus contains."""
    order = np.random.default_rng([seed, 0]).permutation(len(pool))
    taken, total = [], 0
    for i in order:
        if total >= n_bytes:
            break
        taken.append(int(i))
        total += len(pool[i]) + 2
    held = set(taken)
    return [pool[i] for i in sorted(taken)], [p for i, p in enumerate(pool) if i not in held]


def reshuffled(pool: list[bytes], seed: int):
    """The pool's paragraphs in one seeded permutation after another, endlessly."""
    rng = np.random.default_rng([seed, 1])
    while True:
        for i in rng.permutation(len(pool)):
            yield pool[i]


def write_corpus(pool: list[bytes], n_bytes: int, out: Path, seed: int, single_file: bool) -> tuple[int, int]:
    """A corpus of at least n_bytes (whole paragraphs): a folder of FILE_BYTES files, or one file.
    Returns (bytes, files)."""
    out.mkdir(parents=True)
    stream = reshuffled(pool, seed)
    written, files = 0, 0
    per_file = n_bytes if single_file else FILE_BYTES
    while written < n_bytes:
        path = out / ("corpus.txt" if single_file else f"part-{files:05d}.txt")
        with open(path, "wb") as fh:
            in_file = 0
            while in_file < per_file and written + in_file < n_bytes:
                block: list[bytes] = []
                size = 0
                while size < (1 << 20) and in_file + size < per_file and written + in_file + size < n_bytes:
                    block.append(next(stream))
                    size += len(block[-1]) + 2
                fh.write(b"\n\n".join(block) + b"\n\n")
                in_file += size
        written += path.stat().st_size
        files += 1
    return written, files


def write_paragraphs(paras: list[bytes], path: Path) -> int:
    path.write_bytes(b"\n\n".join(paras) + b"\n")
    return path.stat().st_size


def corpus_arg(folder: Path, single_file: bool) -> Path:
    return folder / "corpus.txt" if single_file else folder


# ------------------------------------------------------------------------------------------- the children

def child_env(threads: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if threads != "default":
        env["OMP_NUM_THREADS"] = threads
    return env


def _rss_mb(pid: int) -> dict[str, float]:
    """VmRSS and its anonymous and file-backed parts (a memory map's pages count as RssFile: page cache
    the kernel can drop, yet part of the peak RSS)."""
    found: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name = line.split(":", 1)[0]
                if name in ("VmRSS", "RssAnon", "RssFile"):
                    found[name] = int(line.split()[1]) / 1024.0
    except OSError:
        return {}
    return found


def run_child(command: list[str], env: dict[str, str], stdout: Path, stderr: Path, cwd: Path) -> dict:
    """Run one child to its end: wall and CPU seconds, its own peak RSS (os.wait4, so no earlier child is
    mixed in), and its RSS sampled every 0.25 s (to see growth, and how much of it is the memory map)."""
    samples: list[tuple[float, float]] = []
    peaks = {"RssAnon": 0.0, "RssFile": 0.0}
    start = time.perf_counter()
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            rss = _rss_mb(proc.pid)
            if "VmRSS" in rss:
                samples.append((time.perf_counter() - start, rss["VmRSS"]))
                for name in peaks:
                    peaks[name] = max(peaks[name], rss.get(name, 0.0))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # Ctrl-C or SIGTERM: the child goes too, before its files are removed
        proc.kill()
        proc.wait()
        raise
    finally:
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = stderr.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"{shlex.join(command)} failed ({proc.returncode}):\n{tail}")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1), "sampled_peak_anon_mb": round(peaks["RssAnon"], 1),
            "sampled_peak_file_mb": round(peaks["RssFile"], 1), "rss_trace_mb": _thin(samples)}


def _thin(samples: list[tuple[float, float]], points: int = 12) -> list[list[float]]:
    """About `points` (seconds, MiB) pairs spread over the run, the last sample always kept."""
    if not samples:
        return []
    step = max(1, len(samples) // points)
    kept = samples[::step]
    if kept[-1] != samples[-1]:
        kept.append(samples[-1])
    return [[round(t, 1), round(rss, 1)] for t, rss in kept]


def rnnlab(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "rnnlab", *map(str, args)]


def prepare(corpus: Path, store: Path, val_file: Path, level: str, work: Path, name: str) -> dict:
    command = rnnlab("prepare", corpus, "-o", store, "--level", level, "--val-file", val_file)
    result = run_child(command, child_env("default"), work / f"{name}.out", work / f"{name}.err", work)
    summary = json.loads((work / f"{name}.out").read_text(encoding="utf-8"))
    return {**result, "tokens": summary["tokens"], "dtype": summary["dtype"], "vocab_size": summary["vocab_size"],
            "tokens_bin_bytes": (store / "tokens.bin").stat().st_size}


def train(store: Path, model_dir: Path, threads: str, work: Path, name: str) -> dict:
    command = rnnlab("train", store, "-o", model_dir, *TRAIN_FLAGS)
    result = run_child(command, child_env(threads), work / f"{name}.out", work / f"{name}.err", work)
    summary = json.loads((model_dir / "summary.json").read_text(encoding="utf-8"))
    result["steps"] = summary.get("steps")
    result["threads"] = summary.get("threads")
    result["model_dir_bytes"] = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    shutil.rmtree(model_dir)
    return result


def profile(corpus: Path, store: Path, val_file: Path, level: str, work: Path, top: int = 15) -> dict:
    """`prepare` under cProfile: the functions with the most own time, and the child's wall seconds."""
    out = work / f"profile-{level}.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "rnnlab", "prepare", str(corpus), "-o",
               str(store), "--level", level, "--val-file", str(val_file)]
    run = run_child(command, child_env("default"), work / f"profile-{level}.out", work / f"profile-{level}.err",
                    work)
    stats = pstats.Stats(str(out))
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]  # by own time
    functions = [{"function": f"{Path(file).name}:{line}({fn})", "calls": nc, "tottime_s": round(tt, 2),
                  "cumtime_s": round(ct, 2)} for (file, line, fn), (_cc, nc, tt, ct, _callers) in rows]
    log(f"profile of prepare --level {level} ({run['wall_s']} s under cProfile):")
    stats.sort_stats("tottime").print_stats(top)  # to stdout: the log; the JSON line comes last
    stats.sort_stats("cumulative").print_stats(top)
    return {"wall_s": run["wall_s"], "top_tottime": functions}


# -------------------------------------------------------------------------------------------- the benchmark

def measure_bpe(args: argparse.Namespace, pool: list[bytes], val_file: Path, work: Path, suffix: str) -> dict:
    """BPE `prepare` (the default vocabulary) on its own --bpe-size corpus: throughput and peak RSS."""
    found: dict = {}
    log(f"writing the {args.bpe_size} corpus for BPE")
    folder = work / "corpus-bpe"
    n_bytes, _ = write_corpus(pool, parse_size(args.bpe_size), folder, args.seed + 100, args.single_file)
    store = work / "tokens-bpe"
    log(f"  {n_bytes:,} bytes; prepare (bpe)")
    prep = prepare(corpus_arg(folder, args.single_file), store, val_file, "bpe", work, "prepare-bpe")
    found["bpe_mb_per_s" + suffix] = round(n_bytes / 1e6 / prep["wall_s"], 1)
    found["bpe_mb_per_cpu_s" + suffix] = round(n_bytes / 1e6 / max(prep["cpu_s"], 1e-9), 1)
    found["bpe_throughput_corpus"] = args.bpe_size
    found["prepare_peak_rss_mb_bpe" + suffix] = prep.pop("peak_rss_mb")
    found["prepare_bpe" + suffix] = prep
    shutil.rmtree(folder)
    shutil.rmtree(store)
    return found


def measure(args: argparse.Namespace, work: Path) -> dict:
    suffix = "_single_file" if args.single_file else ""
    log("reading the books")
    pool = paragraphs(book_paths(Path(args.data_dir)))
    val, pool = hold_out(pool, args.val_bytes, args.seed)
    val_file = work / "valid.txt"
    result: dict = {"paragraphs": len(pool), "pool_bytes": sum(len(p) + 2 for p in pool),
                    "val_file_bytes": write_paragraphs(val, val_file)}
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for n, size in enumerate(sizes):
        key = size_key(size) + suffix
        folder = work / f"corpus-{size_key(size)}"
        log(f"writing the {size} corpus")
        started = time.perf_counter()
        n_bytes, files = write_corpus(pool, parse_size(size), folder, args.seed + n, args.single_file)
        result[f"generate_s_{key}"] = round(time.perf_counter() - started, 1)
        result[f"corpus_bytes_{key}"], result[f"corpus_files_{key}"] = n_bytes, files
        log(f"  {n_bytes:,} bytes in {files} file(s); prepare (char)")
        store = work / f"tokens-{size_key(size)}"
        prep = prepare(corpus_arg(folder, args.single_file), store, val_file, "char", work, f"prepare-{key}")
        result[f"prepare_peak_rss_mb_{key}"] = prep.pop("peak_rss_mb")
        result[f"prepare_s_{key}"] = prep["wall_s"]
        result[f"char_mb_per_s_{key}"] = round(n_bytes / 1e6 / prep["wall_s"], 1)
        result[f"char_mb_per_cpu_s_{key}"] = round(n_bytes / 1e6 / max(prep["cpu_s"], 1e-9), 1)
        result[f"prepare_{key}"] = prep
        shutil.rmtree(folder)  # the store is all training reads
        for threads in args.threads.split(","):
            tag = "" if threads == "default" else f"_{threads}thread"
            log(f"  train 200 steps on the store (threads: {threads})")
            run = train(store, work / "model", threads, work, f"train-{key}{tag}")
            result[f"peak_rss_mb_{key}{tag}"] = run.pop("peak_rss_mb")
            result[f"train_{key}{tag}"] = run
            log(f"  peak RSS {result[f'peak_rss_mb_{key}{tag}']} MiB, {run['wall_s']} s, {run['steps']} steps")
        shutil.rmtree(store)
    largest = size_key(sizes[-1]) + suffix
    result["char_mb_per_s" + suffix] = result[f"char_mb_per_s_{largest}"]
    result["char_mb_per_cpu_s" + suffix] = result[f"char_mb_per_cpu_s_{largest}"]
    result["char_throughput_corpus"] = sizes[-1]

    if not args.skip_bpe:
        result.update(measure_bpe(args, pool, val_file, work, suffix))

    first, last = size_key(sizes[0]) + suffix, largest
    if len(sizes) > 1:
        threads = args.threads.split(",")[0]  # the growth of the first thread setting measured
        tag = "" if threads == "default" else f"_{threads}thread"
        growth = result[f"peak_rss_mb_{last}{tag}"] - result[f"peak_rss_mb_{first}{tag}"]
        result["rss_growth_mb" + suffix] = round(growth, 1)
        result["goal_rss_met" + suffix] = growth <= GOAL_RSS_GROWTH_MB
    result["goal_char_met" + suffix] = result["char_mb_per_s" + suffix] >= GOAL_CHAR_MB_PER_S
    if not args.skip_bpe:
        result["goal_bpe_met" + suffix] = result["bpe_mb_per_s" + suffix] >= GOAL_BPE_MB_PER_S

    for level, met in (("char", result["goal_char_met" + suffix]), ("bpe", result.get("goal_bpe_met" + suffix, True))):
        if args.profile == "always" or (args.profile == "auto" and not met):
            log(f"profiling prepare --level {level} on a {args.profile_size} corpus")
            folder = work / f"corpus-profile-{level}"
            write_corpus(pool, parse_size(args.profile_size), folder, args.seed + 200, args.single_file)
            result[f"profile_{level}"] = {"corpus": args.profile_size, **profile(
                corpus_arg(folder, args.single_file), work / f"tokens-profile-{level}", val_file, level, work)}
            shutil.rmtree(folder)
            shutil.rmtree(work / f"tokens-profile-{level}", ignore_errors=True)
    return result


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()


def _interrupted(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10MB,1GB", help="comma-separated corpus sizes (KB/MB/GB of 10^3/6/9 "
                        "bytes), smallest first; default 10MB,1GB")
    parser.add_argument("--bpe-size", default="100MB", type=str, help="corpus size for BPE throughput")
    parser.add_argument("--skip-bpe", action="store_true", help="no BPE corpus (a quick memory-only run)")
    parser.add_argument("--profile-size", default="50MB", help="corpus size for the cProfile run")
    parser.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                        help="profile prepare where a throughput goal is missed (auto), always or never")
    parser.add_argument("--val-bytes", type=parse_size, default=parse_size("200KB"),
                        help="size of the held-out validation file (default 200KB)")
    parser.add_argument("--threads", default="default,1",
                        help="training runs: 'default' (torch's choice) and/or OMP_NUM_THREADS values")
    parser.add_argument("--single-file", action="store_true", help="write each corpus as one file, not a folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=str(SHARED_DATA), help="folder holding pretrain/ and the books")
    parser.add_argument("--work-dir", default=None, help="make the temporary folder here (default /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--record", action="store_true", help=f"append the JSON line to {RESULTS.name}")
    args = parser.parse_args()
    for size in [*args.sizes.split(","), args.bpe_size, args.profile_size]:
        parse_size(size)
    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), _interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also where a shell started it ignoring SIGINT

    head, diff = _git("rev-parse", "--short", "HEAD"), _git("diff", "HEAD", "--", "rnnlab")
    dirty = diff != ""
    result: dict = {"benchmark": "big_corpus", "date": datetime.datetime.now(datetime.UTC).isoformat(
                    timespec="seconds"), "command": shlex.join(["python", "benchmarks/big_corpus.py", *sys.argv[1:]]),
                    "head": head, "rnnlab_uncommitted_changes": dirty, "cpus": os.cpu_count(),
                    "loadavg_start": [round(x, 2) for x in os.getloadavg()], "layout": "single file" if
                    args.single_file else f"folder of {FILE_BYTES // 10**6} MB files", "mb": "10^6 bytes (RSS: MiB)",
                    "train_flags": " ".join(TRAIN_FLAGS)}
    if args.work_dir:
        Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="big-corpus-", dir=args.work_dir))
    log(f"work folder {work}")
    try:
        result.update(measure(args, work))
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    # The children import rnnlab when they start: a commit during the run changes what later ones measure.
    result["head_end"] = _git("rev-parse", "--short", "HEAD")
    result["rnnlab_changed_during_run"] = (result["head_end"], _git("diff", "HEAD", "--", "rnnlab")) != (head, diff)
    emit_and_record(result, RESULTS, args.record)


if __name__ == "__main__":
    main()
