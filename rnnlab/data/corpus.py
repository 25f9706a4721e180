"""Reading a corpus as text, cleaning it, and cutting it into contiguous splits.

Everything here is strict on purpose: a corpus that is not UTF-8, or is a binary file by mistake, fails
with the path and the byte offset instead of training a model on mojibake.
"""

from __future__ import annotations

import codecs
import hashlib
import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

from rnnlab.errors import ConfigError, DataError

T = TypeVar("T")

_BINARY_PROBE = 8192
_START_MARK = "*** START OF"
_END_MARK = "*** END OF"


ERRORS = ("strict", "replace", "ignore")


def check_encoding(encoding: str, errors: str) -> str:
    """Python's canonical name of `encoding`; a ConfigError for an unknown one or an unknown `errors`."""
    if errors not in ERRORS:
        raise ConfigError(f"--errors must be one of {', '.join(ERRORS)} (got {errors!r})")
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError, ValueError):  # ValueError: a name with a NUL in it
        raise ConfigError(f"--encoding {encoding!r} is not an encoding Python knows (e.g. utf-8, latin-1, "
                          "cp1252)") from None


def read_text_file(path: str | Path, encoding: str = "utf-8", errors: str = "strict") -> str:
    """Read one file (strict UTF-8 unless told otherwise); drop a leading BOM, turn CRLF and lone CR into LF.

    `errors="replace"` decodes a byte that is not valid in `encoding` as U+FFFD; "strict" refuses the
    file, naming the byte and its offset.
    """
    return decode_text(Path(path), read_file_bytes(path), encoding, errors)


def read_file_bytes(path: str | Path) -> bytes:
    """The bytes of one corpus file; a missing file, a directory or a read error is a DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a text file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def decode_text(path: Path, data: bytes, encoding: str = "utf-8", errors: str = "strict") -> str:
    """`data` (the bytes of `path`) as text, as `read_text_file` gives it."""
    name = check_encoding(encoding, errors)
    _check_head(path, data[:_BINARY_PROBE], name)
    try:
        text = data.decode(encoding, errors)
    except UnicodeDecodeError as exc:
        raise _undecodable(path, name, encoding, data[exc.start], exc.start) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    text = _to_lf(text)
    if not text or text.isspace():  # (isspace stops at the first letter; strip copies the text)
        raise DataError(f"{path} is empty" if not text else f"{path} holds only whitespace")
    return text


def _check_head(path: Path, head: bytes, name: str) -> None:
    """Refuse, from its first bytes, a file read as UTF-8 that is UTF-16 or binary."""
    if name in ("utf-8", "utf-8-sig"):
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise DataError(f"{path} is UTF-16 text; save it as UTF-8 or give --encoding utf-16")
        if b"\x00" in head:
            raise DataError(f"{path} looks like a binary file, not text")


def _undecodable(path: Path, name: str, encoding: str, byte: int, offset: int) -> DataError:
    return DataError(f"{path} is not {'UTF-8' if name == 'utf-8' else encoding} text: invalid byte 0x{byte:02x} "
                     f"at byte offset {offset} (give --encoding, e.g. latin-1, or --errors replace)")


def _unreadable(path: Path, exc: OSError) -> DataError:
    return DataError(f"cannot read {path}: {exc.strerror or exc}")


def _to_lf(text: str) -> str:
    """CRLF and lone CR as LF (searched first: the replacements copy the text even when nothing changes)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


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
    return "\n".join(doc.text for doc in iter_documents(path, keep_header, encoding, errors))


# Files up to this size are read whole; a larger one is streamed in blocks (twice: once to find its
# Gutenberg lines, count its characters and hash it, once to hand its text on), so memory stays bounded.
STREAM_BYTES = 1 << 26
BLOCK_BYTES = 1 << 24


@dataclass(frozen=True)
class Document:
    """One file of a corpus as `read_corpus` reads it: its cleaned text (`pieces`), its characters, and what
    identifies its bytes."""

    path: Path
    size: int
    chars: int
    sha256: str | None
    _text: str | None = None
    _bounds: tuple[int, int] = (0, 0)
    _reading: tuple[str, str] = ("utf-8", "strict")

    @property
    def text(self) -> str:
        return self._text if self._text is not None else "".join(self.pieces())

    def pieces(self) -> Iterator[str]:
        if self._text is not None:
            yield self._text
            return
        begin, end = self._bounds
        at = 0
        for piece in _decoded_blocks(self.path, *self._reading):
            lo, hi = max(begin - at, 0), min(end - at, len(piece))
            if lo < hi:
                yield piece[lo:hi]
            at += len(piece)
            if at >= end:
                return


def iter_documents(path: str | Path, keep_header: bool = False, encoding: str = "utf-8",
                   errors: str = "strict", digest: bool = False) -> Iterator[Document]:
    """The files of `read_corpus(path)` one at a time, cleaned the same way, so a corpus far larger than
    memory can be read as a stream. A file up to STREAM_BYTES is held whole while it is the current one;
    a larger one is streamed in blocks. `digest` adds each file's sha256."""
    for file in corpus_files(path):
        if _file_size(file) > STREAM_BYTES:
            yield _streamed_document(file, keep_header, encoding, errors)
            continue
        data = read_file_bytes(file)
        text = decode_text(file, data, encoding, errors)
        if not keep_header:
            text = strip_gutenberg(text)
            _refuse_empty_stripped(file, text)
        sha = hashlib.sha256(data).hexdigest() if digest else None
        size = len(data)
        del data
        yield Document(file, size, len(text), sha, _text=text)


def _file_size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0  # read_file_bytes names the problem


def _refuse_empty_stripped(file: Path, text: str) -> None:
    if not text or text.isspace():
        raise DataError(f"{file} has no text between its Project Gutenberg START and END lines "
                        "(use --keep-header to keep the whole file)")


def _streamed_document(file: Path, keep_header: bool, encoding: str, errors: str) -> Document:
    """A large file's Document from one streaming pass: its bytes hashed, its Gutenberg bounds found."""
    digest, size = hashlib.sha256(), 0

    def count(data: bytes) -> None:
        nonlocal size
        digest.update(data)
        size += len(data)

    scan = _GutenbergScan()
    for piece in _decoded_blocks(file, encoding, errors, on_bytes=count):
        scan.feed(piece)
    if not scan.has_text:
        raise DataError(f"{file} is empty" if not scan.n else f"{file} holds only whitespace")
    begin, end = (0, scan.n) if keep_header else scan.bounds()
    doc = Document(file, size, end - begin, digest.hexdigest(), _bounds=(begin, end), _reading=(encoding, errors))
    if not keep_header and not any(not piece.isspace() for piece in doc.pieces()):  # stops at the first text
        _refuse_empty_stripped(file, "")
    return doc


def _decoded_blocks(file: Path, encoding: str, errors: str, block: int | None = None,
                    on_bytes=None) -> Iterator[str]:
    """`read_text_file(file)` as consecutive pieces, read and decoded BLOCK_BYTES at a time: the same
    checks, the same BOM and line-ending rules, the same error (byte offset included)."""
    name = check_encoding(encoding, errors)
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    fed, first, held_cr = 0, True, False  # bytes decoded so far; nothing decoded yet; a CR held back
    try:
        fh = open(file, "rb")
    except OSError as exc:
        raise _unreadable(file, exc) from exc
    with fh:
        try:
            _check_head(file, fh.read(_BINARY_PROBE), name)
            fh.seek(0)
        except OSError as exc:
            raise _unreadable(file, exc) from exc
        while True:
            try:
                data = fh.read(block or BLOCK_BYTES)
            except OSError as exc:
                raise _unreadable(file, exc) from exc
            final = not data
            if on_bytes is not None and data:
                on_bytes(data)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(data, final)
            except UnicodeDecodeError as exc:
                raise _undecodable(file, name, encoding, exc.object[exc.start], fed - pending + exc.start) from exc
            fed += len(data)
            if first and text:  # the first character decoded: a BOM there is dropped
                text, first = text[1:] if text[0] == "\ufeff" else text, False
            if held_cr:
                text, held_cr = "\r" + text, False
            if text.endswith("\r") and not final:  # it may be the first half of a CRLF
                text, held_cr = text[:-1], True
            text = _to_lf(text)
            if text:
                yield text
            if final:
                return


class _GutenbergScan:
    """strip_gutenberg's bounds of a text read once as pieces: text[begin:end] == strip_gutenberg(text)."""

    _KEEP = max(len(_START_MARK), len(_END_MARK)) - 1  # a mark spanning two pieces is still found

    def __init__(self) -> None:
        self.n = 0
        self.has_text = False
        self._buf, self._base, self._newline = "", 0, -1  # _newline: the last "\n" before _base
        self._start: int | None = None
        self._begin: int | None = None
        self._end_any: int | None = None
        self._end_after: int | None = None

    def feed(self, piece: str) -> None:
        self.has_text = self.has_text or not piece.isspace()
        self.n += len(piece)
        buf, base = self._buf + piece, self._base
        if self._start is None:
            i = buf.find(_START_MARK)
            if i >= 0:
                self._start = base + i
        if self._start is not None and self._begin is None:
            j = buf.find("\n", max(self._start - base, 0))
            if j >= 0:
                self._begin = base + j + 1
        if self._end_any is None:
            k = buf.find(_END_MARK)
            if k >= 0:
                self._end_any = self._line_start(buf, k)
        if self._begin is not None and self._end_after is None:
            k = buf.find(_END_MARK, max(self._begin - base, 0))
            if k >= 0:
                self._end_after = max(self._line_start(buf, k), self._begin)
        cut = max(len(buf) - self._KEEP, 0)
        nl = buf.rfind("\n", 0, cut)
        if nl >= 0:
            self._newline = base + nl
        self._buf, self._base = buf[cut:], base + cut

    def _line_start(self, buf: str, i: int) -> int:
        nl = buf.rfind("\n", 0, i)
        return self._base + nl + 1 if nl >= 0 else self._newline + 1

    def bounds(self) -> tuple[int, int]:
        if self._start is None:
            begin, stop = 0, self._end_any
        else:
            begin, stop = (self._begin if self._begin is not None else self.n), self._end_after
        return begin, self.n if stop is None else max(begin, stop - 1)


def corpus_pieces(path: str | Path, keep_header: bool = False, encoding: str = "utf-8",
                  errors: str = "strict") -> Iterator[str]:
    """The text of `read_corpus(path)` as consecutive pieces (the files and the newlines joining them)."""
    for i, doc in enumerate(iter_documents(path, keep_header, encoding, errors)):
        if i:
            yield "\n"
        yield from doc.pieces()


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
    n_train, n_valid = split_sizes(len(text), fractions)
    return text[:n_train], text[n_train:n_train + n_valid], text[n_train + n_valid:]


def split_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    """(training, validation) characters of `split_text` for a text of `n` characters (test: the rest)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or fractions[0] <= 0:
        raise ConfigError("--split must be three non-negative fractions with a positive training share")
    exact = [Fraction(repr(float(f))) for f in fractions]
    if abs(sum(exact) - 1) > Fraction(1, 10**6):
        raise ConfigError(f"--split fractions must add up to 1 (got {', '.join(map(str, fractions))})")
    n_train = math.floor(exact[0] * n)
    n_valid = math.floor(exact[1] * n)
    if exact[2] == 0:
        n_valid = n - n_train
    elif exact[1] == 0:
        n_valid = 0
    if n_train == 0:
        raise DataError(f"the corpus ({n} characters) is too short to split: the training part would be empty")
    return n_train, n_valid


# ------------------------------------------------------------------------------------ streaming a corpus
#
# A corpus larger than memory is read as pieces (`corpus_pieces`), cut into its splits by character
# count (`take_chars`, the same cut as split_text) and handed to a tokenizer in chunks of bounded size
# (`safe_chunks`). A chunk ends only where a whitespace run begins after a non-space character: no
# character token, word piece or byte-level BPE pre-token spans such a point, so encoding chunk by chunk
# gives exactly the ids of encoding the whole text.

CHUNK_CHARS = 1 << 22


class PieceReader:
    """Consecutive character ranges of one stream of text pieces, each read once."""

    def __init__(self, pieces: Iterator[str]):
        self._pieces = iter(pieces)
        self._held = ""

    def take(self, n: int) -> Iterator[str]:
        """The next `n` characters of the stream as pieces (fewer if the stream ends first)."""
        while n > 0:
            piece = self._held or next(self._pieces, None)
            if piece is None:
                return
            self._held = ""
            if len(piece) > n:
                piece, self._held = piece[:n], piece[n:]
            n -= len(piece)
            if piece:
                yield piece


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """`items` again, produced by a thread that runs up to `depth` items ahead of the consumer.

    Reading a corpus is decoding and cleaning text, which holds the GIL; what `prepare` does with each chunk
    next (numpy's id lookup, hashing, writing) mostly releases it, so the two overlap on two CPUs instead of
    taking turns. An error in the producer is raised in the consumer; a consumer that stops early (an
    error of its own, Ctrl-C) stops the producer at its next item.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put((end, exc))

    producer = threading.Thread(target=produce, name="rnnlab-read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item, exc = handoff.get()
            if item is end:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        producer.join()


def safe_chunks(pieces: Iterator[str], size: int = CHUNK_CHARS, cut_anywhere: bool = False) -> Iterator[str]:
    """The text "".join(pieces) again, as chunks of about `size` characters that end at safe cuts (see
    above). `cut_anywhere` (character tokens, no lower-casing) lets a text without whitespace be cut at
    any character; otherwise such a text is held until its first safe cut."""
    parts: list[str] = []
    held = 0
    for piece in pieces:
        parts.append(piece)
        held += len(piece)
        if held < size:
            continue
        text, lo = "".join(parts), 0
        while len(text) - lo >= size:
            cut = _safe_cut(text, lo, lo + size, cut_anywhere)
            if cut is None:
                break
            yield text[lo:cut]
            lo = cut
        rest = text[lo:]
        parts, held = [rest], len(rest)
    if held:
        yield "".join(parts)


def _safe_cut(text: str, lo: int, hi: int, cut_anywhere: bool) -> int | None:
    """The last i in (lo, hi] where text[i] is a space or newline and text[i - 1] is not whitespace."""
    end = hi + 1
    while True:
        i = max(text.rfind(" ", lo + 1, end), text.rfind("\n", lo + 1, end))
        if i < 0:
            return hi if cut_anywhere else None
        if not text[i - 1].isspace():
            return i
        end = i
