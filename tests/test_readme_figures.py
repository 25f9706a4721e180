"""Every command of the README's figures table exists: the script is in the repository and each flag the
table passes to it is one its argument parser accepts (asked through the script's own `--help`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def figure_commands() -> list[tuple[str, list[str]]]:
    """(script, flags) for each `python SCRIPT ...` in the figures table; 'same' rows add flags to the row above."""
    text = (ROOT / "README.md").read_text()
    table = text.split("\n## Figures", 1)[1].split("\n## ", 1)[0]
    commands: list[tuple[str, list[str]]] = []
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 4 or not row.startswith("|"):
            continue
        command = cells[3]
        scripts = re.findall(r"python ((?:benchmarks|scripts)/\S+\.py)", command)
        flags = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command)
        if scripts:
            for script in scripts:
                commands.append((script, flags))
        elif command.startswith("same") and commands:
            commands.append((commands[-1][0], flags))
    return commands


def test_the_table_has_commands():
    scripts = {script for script, _ in figure_commands()}
    assert {"benchmarks/train_throughput.py", "benchmarks/jungle_book.py",
            "scripts/train_default_model.py"} <= scripts


@pytest.mark.parametrize("script,flags", figure_commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_figure_command_exists(script, flags):
    path = ROOT / script
    assert path.is_file(), f"README names {script}, which does not exist"
    help_text = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True,
                               cwd=ROOT, timeout=120)
    assert help_text.returncode == 0, help_text.stderr
    for flag in flags:
        if flag in ("--dynamic",):  # a flag of the `rnnlab evaluate` command in the same cell
            continue
        assert flag in help_text.stdout, f"{script} does not accept {flag}"
