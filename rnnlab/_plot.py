"""The one way rnnlab draws a figure into a file, for `rnnlab plot` (report.py) and `forecast predict
--plot` (forecasting/plot.py) alike: matplotlib imported only when a figure is drawn (the Agg backend, so
no display is needed), the format read from the file's suffix, the file written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlab import _io
from rnnlab.errors import ConfigError, MissingExtraError, RnnlabError

FORMATS = ("png", "pdf", "svg")


def figure_format(path: str | Path, flag: str, default: str | None = None) -> str:
    """The format `path`'s suffix names (`default` when it has none), or a ConfigError naming `flag`; the
    folder it goes into must exist."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".") or default
    if fmt not in FORMATS:
        raise ConfigError(f"{flag} must end in {', '.join('.' + f for f in FORMATS)} (got {path.name!r})")
    if not path.parent.is_dir():
        raise RnnlabError(f"cannot write {path}: the folder {path.parent} does not exist")
    return fmt


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or the one-line error naming the plot extra."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError("matplotlib", "plotting", extra="plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, fmt: str, dpi: int = 110) -> Path:
    """Write `fig` to `path` atomically (temp file, fsync, rename) and close it."""
    plt = pyplot()
    try:
        _io.atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))
    finally:
        plt.close(fig)
    return Path(path)
