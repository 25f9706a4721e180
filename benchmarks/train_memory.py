"""Memory of the everyday run: RSS of the CLI before any work, and peak RSS of `rnnlab train`.

    python benchmarks/train_memory.py [--max-time 1] [--threads default,1] [--rev HEAD~3] [--record]

Every figure comes from a fresh child process, so nothing this script imported is counted:
- `cli_import_rss_mb`: VmRSS right after `import rnnlab.cli`; `cli_parsed_rss_mb`: after the parser has also
  read a train command (the heavy imports happen only once a command runs);
- `peak_rss_mb_{threads}`: the peak resident memory (ru_maxrss from os.wait4 of that one child) of
  `rnnlab train jungle-book -o DIR --data-dir ../shared/data --max-time M` (M in minutes, as the flag is;
  `--max-time 10` is the issue's 10-minute run), at torch's default thread count and under OMP_NUM_THREADS=1;
  with `steps_{threads}`, the steps it trained (summary.json), and `hwm_at_first_eval_mb_{threads}`, the
  child's VmHWM when the first evaluation's line reached metrics.jsonl (the peak before steady state).

`--rev REV` (repeatable) measures the rnnlab package of a git revision beside the working tree's, the same
run side by side: the revision is unpacked with `git archive` into a temporary folder that comes first on
PYTHONPATH; `--tree DIR` does the same for a folder holding an rnnlab package (a change not yet committed).
Model directories and unpacked revisions are removed at the end. `--record` appends the JSON
line to benchmarks/results/train-memory.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, SHARED_DATA, emit_and_record  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "train-memory.jsonl"

# Runs in the child: what `rnnlab` costs before a command does any work.
_CLI_PROBE = """
import json, sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0
import rnnlab.cli
imported = rss()
rnnlab.cli.build_parser().parse_args(['train', 'jungle-book', '-o', 'unused', '--max-time', '1'])
print(json.dumps({'import': imported, 'parsed': rss(), 'file': rnnlab.__file__,
                  'torch': 'torch' in sys.modules, 'modules': len(sys.modules)}))
"""


def child_env(source: Path, threads: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(source)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.pop("OMP_NUM_THREADS", None)
    if threads != "default":
        env["OMP_NUM_THREADS"] = threads
    return env


def cli_rss(source: Path, work: Path) -> dict:
    # cwd: a folder without rnnlab in it (`-c` and `-m` put the working directory first on sys.path).
    out = subprocess.run([sys.executable, "-c", _CLI_PROBE], env=child_env(source, "default"), cwd=work,
                         capture_output=True, text=True, check=True).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    # The revision under test must be the one imported, not the editable install's working tree.
    if not Path(probe["file"]).resolve().is_relative_to(source.resolve()):
        raise SystemExit(f"imported {probe['file']}, expected rnnlab from {source}")
    return probe


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def train_peak(source: Path, threads: str, args: argparse.Namespace, work: Path) -> dict:
    """Peak RSS of one `rnnlab train` child; its model directory is removed afterwards."""
    model_dir = Path(tempfile.mkdtemp(prefix="model-", dir=work))
    command = [sys.executable, "-m", "rnnlab", "train", args.corpus, "-o", str(model_dir / "run"),
               "--data-dir", args.data_dir, "--max-time", str(args.max_time), "--no-progress",
               *shlex.split(args.train_args)]
    proc = subprocess.Popen(command, env=child_env(source, threads), cwd=work, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    first_eval_hwm: list[float] = []

    def watch_first_eval() -> None:
        # metrics.jsonl appears with the first evaluation: the peak so far is the start-up's and one eval's.
        metrics = model_dir / "run" / "metrics.jsonl"
        while proc.poll() is None and not first_eval_hwm:
            if metrics.exists():
                rss = _vm_hwm_mb(proc.pid)
                if rss is not None:
                    first_eval_hwm.append(rss)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_first_eval, daemon=True)
    watcher.start()
    stderr = proc.stderr.read()
    # wait4 reports this child's own rusage (RUSAGE_CHILDREN would mix in every earlier child).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"train failed ({proc.returncode}):\n{stderr[-2000:]}")
    steps = _steps(model_dir / "run")
    subprocess.run(["rm", "-rf", str(model_dir)], check=True)
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1), "steps": steps,
            "hwm_at_first_eval_mb": round(first_eval_hwm[0], 1) if first_eval_hwm else None}


def _steps(run_dir: Path) -> int | None:
    """The steps the run trained (summary.json), so runs of one budget can be compared for work done."""
    summary = run_dir / "summary.json"
    return json.loads(summary.read_text(encoding="utf-8")).get("steps") if summary.exists() else None


def unpack(rev: str, work: Path) -> Path:
    """The revision's tree in a temporary folder (git archive reads the repository, touches no file)."""
    target = work / f"rev-{rev.replace('/', '_')}"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "rnnlab"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def measure(source: Path, args: argparse.Namespace, work: Path) -> dict:
    probe = cli_rss(source, work)
    result = {"cli_import_rss_mb": round(probe["import"], 1), "cli_parsed_rss_mb": round(probe["parsed"], 1),
              "cli_imports_torch": probe["torch"]}
    for threads in args.threads.split(","):
        for key, value in train_peak(source, threads, args, work).items():
            result[f"{key}_{threads}"] = value
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-time", type=float, default=1.0, help="minutes per training run (default 1)")
    parser.add_argument("--threads", default="default,1",
                        help="comma-separated: 'default' (torch's choice) and/or OMP_NUM_THREADS values")
    parser.add_argument("--corpus", default="jungle-book")
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--rev", action="append", default=[], help="also measure this git revision")
    parser.add_argument("--tree", action="append", default=[], type=Path,
                        help="also measure the rnnlab package under this folder (a change not yet committed)")
    parser.add_argument("--train-args", default="", metavar="'--FLAG VALUE ...'",
                        help="more `rnnlab train` flags, e.g. '--checkpoint-every 10' (off the everyday run)")
    parser.add_argument("--label", default=None, help="a note kept with the figures")
    parser.add_argument("--record", action="store_true", help=f"append the JSON line to {RESULTS.name}")
    args = parser.parse_args()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    result: dict = {"benchmark": "train_memory", "label": args.label, "max_time_min": args.max_time,
                    "corpus": args.corpus, "command": f"rnnlab train {args.corpus} -o DIR --data-dir "
                    f"{args.data_dir} --max-time {args.max_time} --no-progress {args.train_args}".strip(), "head": head,
                    "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="train-memory-") as tmp:
        work = Path(tmp)
        for rev in args.rev:
            result[rev] = measure(unpack(rev, work), args, work)
        for tree in args.tree:
            result[f"tree:{tree.name}"] = measure(tree.resolve(), args, work)  # (the folder's name, not its path)
        result["worktree"] = measure(ROOT, args, work)
    emit_and_record(result, RESULTS, args.record)


if __name__ == "__main__":
    main()
