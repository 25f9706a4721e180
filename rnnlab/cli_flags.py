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
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line, like every other rnnlab error.

    A value refused by an argument type reads like the same check made later by the configuration:
    argparse's "argument --step: must be ..." becomes "--step must be ...".
    """

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument ([^:]+): (?=must )", r"\1 ", message)
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
