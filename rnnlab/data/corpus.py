"""Reading a corpus as text, cleaning it, and cutting it into contiguous splits.

Everything here is strict on purpose: a corpus that is not UTF-8, or is a binary file by mistake, fails
with the path and the byte offset instead of training a model on mojibake.
"""

from __future__ import annotations

import codecs
import math
from fractions import Fraction
from pathlib import Path

from rnnlab.errors import ConfigError, DataError

_BINARY_PROBE = 8192
_START_MARK = "*** START OF"
_END_MARK = "*** END OF"
# The README's benchmark split for the Jungle Book: the first 90% of characters train, the rest test.
_JUNGLE_BOOK_TRAIN = Fraction(9, 10)


ERRORS = ("strict", "replace", "ignore")


def check_encoding(encoding: str, errors: str) -> str:
    """Python's canonical name of `encoding`; a ConfigError for an unknown one or an unknown `errors`."""
    if errors not in ERRORS:
        raise ConfigError(f"--errors must be one of {', '.join(ERRORS)} (got {errors!r})")
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ConfigError(f"--encoding {encoding!r} is not an encoding Python knows (e.g. utf-8, latin-1, "
                          "cp1252)") from None


def read_text_file(path: str | Path, encoding: str = "utf-8", errors: str = "strict") -> str:
    """Read one file (strict UTF-8 unless told otherwise); drop a leading BOM, turn CRLF and lone CR into LF.

    `errors="replace"` decodes a byte that is not valid in `encoding` as U+FFFD; "strict" refuses the
    file, naming the byte and its offset.
    """
    name = check_encoding(encoding, errors)
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a text file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if name in ("utf-8", "utf-8-sig"):
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise DataError(f"{path} is UTF-16 text; save it as UTF-8 or give --encoding utf-16")
        if b"\x00" in data[:_BINARY_PROBE]:
            raise DataError(f"{path} looks like a binary file, not text")
    try:
        text = data.decode(encoding, errors)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not {'UTF-8' if name == 'utf-8' else encoding} text: invalid byte 0x{data[exc.start]:02x} at byte offset {exc.start} "
            f"(give --encoding, e.g. latin-1, or --errors replace)"
        ) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(f"{path} is empty" if not text else f"{path} holds only whitespace")
    return text


def corpus_files(path: str | Path) -> list[Path]:
    """The files `read_corpus` reads: the file itself, or a directory's *.txt files, recursively, by path."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if not path.is_dir():
        return [path]
    files = sorted((p for p in path.rglob("*.txt") if p.is_file()), key=lambda p: p.relative_to(path).parts)
    if not files:
        raise DataError(f"{path} is a directory with no .txt files")
    return files


def read_corpus(path: str | Path, keep_header: bool = False, encoding: str = "utf-8", errors: str = "strict") -> str:
    """The text of a file, or of a directory's *.txt files joined with "\\n", Gutenberg boilerplate removed.

    The boilerplate is stripped per file (unless `keep_header`), so a directory of several Project
    Gutenberg books loses every book's licence, not only the first one's. Each file is decoded with
    `encoding` and `errors` (see `read_text_file`).
    """
    parts = []
    for file in corpus_files(path):
        text = read_text_file(file, encoding, errors)
        if not keep_header:
            text = strip_gutenberg(text)
            if not text.strip():
                raise DataError(f"{file} has no text between its Project Gutenberg START and END lines "
                                "(use --keep-header to keep the whole file)")
        parts.append(text)
    return "\n".join(parts)


def strip_gutenberg(text: str) -> str:
    """The lines strictly between the `*** START OF` line and the next `*** END OF` line.

    Convention: the kept lines are joined by "\\n" and the newline that ended the last kept line is
    dropped with the END line (on the Jungle Book: 273,055 characters, the README's first count). A
    missing START line keeps from the beginning; a missing END line keeps to the end. Text without
    either marker comes back unchanged, so stripping twice is harmless.
    """
    begin = 0
    start = _line_containing(text, _START_MARK, 0)
    if start is not None:
        line_end = text.find("\n", start)
        begin = len(text) if line_end < 0 else line_end + 1
    end = len(text)
    stop = _line_containing(text, _END_MARK, begin)
    if stop is not None:
        end = max(begin, stop - 1)  # stop - 1 is the newline ending the last kept line
    return text[begin:end]


def _line_containing(text: str, mark: str, from_index: int) -> int | None:
    """Index where the first line at or after `from_index` holding `mark` begins, or None."""
    hit = text.find(mark, from_index)
    if hit < 0:
        return None
    return max(text.rfind("\n", 0, hit) + 1, from_index)


def split_text(text: str, fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)) -> tuple[str, str, str]:
    """Cut `text` into contiguous (train, valid, test) parts; deterministic, no shuffling.

    train is text[:floor(f0 n)], valid the next floor(f1 n) characters, test the rest. What rounding
    leaves over goes to the last part with a non-zero fraction, so (0.9, 0.1, 0.0) really gives an
    empty test part. Fractions are taken as the decimals written (0.29 of 100 is 29, not 28). Short
    texts may give empty valid or test parts; the caller decides whether that is acceptable.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or fractions[0] <= 0:
        raise ConfigError("--split must be three non-negative fractions with a positive training share")
    exact = [Fraction(repr(float(f))) for f in fractions]
    if abs(sum(exact) - 1) > Fraction(1, 10**6):
        raise ConfigError(f"--split fractions must add up to 1 (got {', '.join(map(str, fractions))})")
    n = len(text)
    n_train = math.floor(exact[0] * n)
    n_valid = math.floor(exact[1] * n)
    if exact[2] == 0:
        n_valid = n - n_train
    elif exact[1] == 0:
        n_valid = 0
    if n_train == 0:
        raise DataError(f"the corpus ({n} characters) is too short to split: the training part would be empty")
    return text[:n_train], text[n_train:n_train + n_valid], text[n_train + n_valid:]


def jungle_book_split(text: str) -> tuple[str, str]:
    """The README benchmark split of the cleaned Jungle Book: (first floor(0.9 n) characters, the rest)."""
    n_train = math.floor(_JUNGLE_BOOK_TRAIN * len(text))
    return text[:n_train], text[n_train:]
