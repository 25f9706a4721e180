"""Data-parallel training through torchrun (gloo on the CPU): two ranks, one writer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import rnnlab

ROOT = Path(__file__).resolve().parents[1]


def test_torchrun_two_ranks_train_one_model(tmp_path, small_corpus):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", "29533", "-m", "rnnlab", "train",
         str(small_corpus), "-o", str(out), "--hidden", "32", "--layers", "1", "--embedding", "8",
         "--seq-len", "16", "--batch-size", "4", "--max-steps", "30", "--eval-every", "10", "--no-progress",
         "--sample-every", "0"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    # Rank 0 alone writes and reports: one line per evaluation, not one per rank.
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert result.stderr.count("step     10 |") == 1
    assert records[-1]["val_loss"] < records[0]["val_loss"]
    lm = rnnlab.load(out)
    assert lm.generate("The", length=5, seed=0).startswith("The")
