"""The command line's one vocabulary: the parser every sub-command uses, the run flags `train` and
`forecast train` share, and argparse groups built from the config dataclasses' field metadata.

A config field declares its flag once (rnnlab.config.option: flag, help, default, check); this module
turns that declaration into an argparse option whose `--help` shows the default and whose refusal of a
bad value is the very message the dataclass gives when the value reaches it from Python or a config file:

    --layers 0   ->  rnnlab: error: --layers must be at least 1 (got 0) (see rnnlab train --help)

Only stdlib and rnnlab.config/errors are imported here, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import Field, fields
from typing import Any, NoReturn

from rnnlab.config import at_least, shown_default
from rnnlab.errors import ConfigError


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line, like every other rnnlab error.

    A value refused by an argument type reads like the same check made later by the configuration:
    argparse's "argument --step: must be ..." becomes "--step must be ...".
    """

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument ([^:]+): (?=(\w+ )?must )", r"\1 ", message)
        self.exit(2, f"rnnlab: error: {message} (see {self.prog} --help)\n")


class _DeprecatedAlias(argparse.Action):
    """A flag kept for old command lines: it sets `dest` like its new name and says it is deprecated."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help=f"deprecated alias of {new}", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"rnnlab: warning: {option_string} is deprecated; use {self.new}", file=sys.stderr, flush=True)
        setattr(namespace, self.dest, True)


def add_run_options(parser: argparse.ArgumentParser, what: str = "run") -> argparse._ArgumentGroup:
    """--resume, --overwrite (and the old --force) and --quiet/--no-progress: the flags every training
    command shares, with one spelling and one destination each (args.resume, args.overwrite, args.quiet)."""
    group = parser.add_argument_group("run")
    group.add_argument("--resume", action="store_true", help=f"continue the interrupted {what} in MODEL_DIR")
    group.add_argument("--overwrite", action="store_true",
                       help="replace an existing MODEL_DIR (only the files rnnlab wrote there)")
    group.add_argument("--force", dest="overwrite", action=_DeprecatedAlias, new="--overwrite")
    group.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                       help="no progress bar")
    return group


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="no progress bar")


# -- argparse options from config fields ------------------------------------------------------------
def add_config_options(group: Any, cls: type, names: Iterable[str] | None = None, *,
                       shown: dict[str, str] | None = None) -> list[str]:
    """One option per flagged field of the config dataclass `cls` (those in `names`, in that order; all by
    default), its destination the field's name and its default None, so a caller sees what was typed and
    leaves the rest to the config. `shown` replaces what --help says of a default (a command's own).
    Returns the destinations added."""
    by_name = {f.name: f for f in fields(cls) if "help" in f.metadata}
    added = []
    for name in (by_name if names is None else names):
        _add_field(group, by_name[name], (shown or {}).get(name))
        added.append(name)
    return added


def _add_field(group: Any, f: Field, shown: str | None) -> None:
    meta = f.metadata
    flag = meta["flag"]
    help_text = f"{meta['help']} (default: {shown or shown_default(f)})".replace("%", "%%")
    kind = _kind(str(f.type))
    if kind == "bool":
        action = argparse.BooleanOptionalAction if meta.get("negatable") else "store_true"
        group.add_argument(flag, dest=f.name, action=action, default=None, help=help_text)
        return
    metavar = meta.get("metavar") or ("{" + ",".join(meta["choices"]) + "}" if meta.get("choices") else None)
    extra = {"nargs": "?", "const": meta["const"]} if meta.get("const") is not None else {}  # a bare --diff: lag 1
    group.add_argument(flag, dest=f.name, type=_reader(flag, kind, meta.get("parse"), meta.get("check")),
                       default=None, metavar=metavar, help=help_text, **extra)


def whole_number(flag: str, minimum: int = 1, meaning: str | None = None):
    """The argparse type of a count that is no config field (--origins, --step): the same reading and the
    same words as a field's (at_least's)."""
    return _reader(flag, "int", None, at_least(minimum, meaning))


def _kind(annotation: str) -> str:
    """'int | None' -> 'int'; 'tuple[float, float, float]' -> 'tuple'."""
    first = next(part.strip() for part in annotation.split("|") if part.strip() != "None")
    return "tuple" if first.startswith("tuple[") else first


def _reader(flag: str, kind: str, parse, check):
    """The argparse type of one flag: read the text, then the field's own check, its complaint verbatim."""
    def read(text: str) -> Any:
        try:
            if parse is not None:
                value = parse(text)
            elif kind == "int":
                value = int(text)
            elif kind == "float":
                value = float(text)
            else:
                value = text
        except ConfigError as exc:  # a parser of rnnlab.config: argparse names the flag itself
            raise argparse.ArgumentTypeError(exc.message.removeprefix(flag + " ")) from None
        except ValueError:
            problem = _judge(check, text)  # a seed's check also judges text that is no number
            raise argparse.ArgumentTypeError(problem or f"must be {'a whole number' if kind == 'int' else 'a number'}"
                                             f" (got {text!r})") from None
        problem = check(value) if check is not None else None
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    read.__name__ = flag  # what argparse calls the type in its own messages
    return read


def _judge(check, value: Any) -> str | None:
    try:
        return check(value) if check is not None else None
    except TypeError:  # a check of numbers, handed text
        return None
