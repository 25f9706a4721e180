"""Seeds and devices: one place that decides where and how reproducibly a run computes."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from rnnlab._machine import usable_cpus
from rnnlab.errors import ConfigError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA): on CPU the same seed gives bitwise the same run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def physical_cores() -> int:
    """Physical cores where they can be told apart from hyper-threads, else the usable CPU count."""
    try:
        seen = set()
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            physical = core = None
            for line in handle:
                if line.startswith("physical id"):
                    physical = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                elif not line.strip() and core is not None:
                    seen.add((physical, core))
                    physical = core = None
        return max(1, min(len(seen), usable_cpus()) if seen else usable_cpus())
    except OSError:
        return usable_cpus()


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA when present, else the CPU with one thread per physical core."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"--device: {name!r} is not a device (cpu, cuda, cuda:N or auto)") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device: {name!r} is not supported (cpu, cuda, cuda:N or auto)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here (use cpu or auto)")
    if device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(physical_cores())
    return device
