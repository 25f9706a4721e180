"""rnnlab.forecasting is layer L4: it imports from L0-L3 (errors, config, _io, training) and never from the
layers above it (api, report, cli, serve) nor from generation; the CLI module only parses and calls it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "rnnlab"
FORBIDDEN = ("rnnlab.api", "rnnlab.report", "rnnlab.cli", "rnnlab.serve", "rnnlab.generation")


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_forecasting_imports_only_lower_layers():
    for path in (PACKAGE / "forecasting").glob("*.py"):
        bad = [name for name in imports(path) if name.startswith(FORBIDDEN)]
        assert not bad, f"{path.name} imports {bad}"


def test_optional_dependencies_are_imported_lazily():
    top_level = set()
    for path in (PACKAGE / "forecasting").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Import):
                top_level.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                top_level.add(node.module.split(".")[0])
    assert not top_level & {"statsforecast", "statsmodels", "matplotlib"}


def test_cli_module_is_cheap_to_import():
    assert not {name for name in imports(PACKAGE / "cli_forecast.py") if name.startswith("rnnlab.forecasting")} - {
        "rnnlab.forecasting.config", "rnnlab.forecasting.forecasters", "rnnlab.forecasting.datasets",
        "rnnlab.forecasting.rnn", "rnnlab.forecasting.backtest", "rnnlab.forecasting.plot"}
    source = (PACKAGE / "cli_forecast.py").read_text()
    module_level = [n for n in ast.parse(source).body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all(not (getattr(n, "module", "") or "").startswith("rnnlab.forecasting") for n in module_level)
