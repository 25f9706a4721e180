"""The import graph keeps the package's layers (the modules of README.md's "Layout" section, numbered in
LAYERS below): a module imports only from its own layer or lower ones."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rnnlab"

# Lower number = lower layer. A module may import from its own layer or lower ones.
LAYERS = {
    "rnnlab.errors": 0,
    "rnnlab.config": 1, "rnnlab._io": 1, "rnnlab._plot": 1, "rnnlab._machine": 1,
    "rnnlab.data": 2, "rnnlab.models": 2,
    "rnnlab.generation": 3, "rnnlab.training": 3,
    "rnnlab.forecasting": 4,
    "rnnlab.api": 5, "rnnlab.report": 5,
    "rnnlab.cli": 6, "rnnlab.cli_forecast": 6, "rnnlab.interactive": 6, "rnnlab.serve": 6,
    "rnnlab.__main__": 6, "rnnlab": 6,
}
# Bans inside one layer: training never imports generation; models never import data.
BANNED = {("rnnlab.training", "rnnlab.generation"), ("rnnlab.models", "rnnlab.data"),
          ("rnnlab.data", "rnnlab.models")}


def layer_of(module: str) -> tuple[str, int] | None:
    best = None
    for prefix, level in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, level)
    return best


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rnnlab")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnlab"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if layer_of(f"{node.module}.{a.name}")
                      and f"{node.module}.{a.name}" in LAYERS}
    return found


def violations_of(me: str, path: Path) -> list[str]:
    mine = layer_of(me)
    assert mine is not None, f"{me} is in no layer; add it to LAYERS"
    found = []
    for target in imports_of(path):
        theirs = layer_of(target)
        if theirs is None or target == "rnnlab":  # `from rnnlab import x` is judged by x
            continue
        if theirs[1] > mine[1]:
            found.append(f"{me} (L{mine[1]}) imports {target} (L{theirs[1]})")
        if (mine[0], theirs[0]) in BANNED:
            found.append(f"{me} imports {target}, which the layering bans")
    return found


def test_every_import_goes_down_the_layers():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        violations += violations_of(module_name(path), path)
    assert violations == []


def test_the_checker_reports_upward_and_banned_imports(tmp_path):
    fake = tmp_path / "corpus.py"
    fake.write_text("from rnnlab.api import load\nimport rnnlab.models.rnn_lm\n")
    found = violations_of("rnnlab.data.corpus", fake)
    assert any("imports rnnlab.api" in v for v in found)
    assert any("bans" in v for v in found)
