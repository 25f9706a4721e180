"""Byte-level BPE at Python-regex speed, giving the very ids and merges of HuggingFace `tokenizers`.

Nearly all the time of the library's byte-level BPE, in its trainer and in `encode_batch`, is its
pre-tokenizer: GPT-2's split regex run by Oniguruma (about 2 MB per CPU-second; the BPE model itself is
cached per word and costs little). The same split runs five times faster in Python's `re`, once the
pattern's classes (\\p{L}, \\p{N}, \\s) are spelled as explicit sets of characters. The class of each
character is asked of the library's own pre-tokenizer (see `_classify`), so the two splits agree on
every character either has seen, whatever Unicode version each was built with.

BPE never merges across pre-tokens, so
- encoding: each distinct pre-token is encoded once by the library's own BPE model (`model.tokenize` of
  its byte-level spelling: what the library runs after its pre-tokenizer) and the text's ids are those
  encodings looked up and concatenated;
- training: the trainer is given each distinct pre-token's byte-level spelling as often as it occurs,
  split on spaces (which the byte-level alphabet never contains), so it counts the very words it
  counts from the text, and learns the same merges;
- a text that is both trained on and encoded (a new store's training split) is split once: counting
  numbers its distinct pre-tokens and records the text as those numbers (`PreTokens`, int32 on disk), and
  its ids are then each number's encoding, looked up.
Both apply only to a tokenizer of the shape rnnlab builds (`is_plain_byte_level`); any other goes the
library's way.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import numpy as np

from rnnlab._machine import usable_cpus

# GPT-2's pattern, the library's ByteLevel regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|
# \s+(?!\S)|\s+), with its classes as placeholders; the contractions share their apostrophe, and a run that
# ends its branch is possessive (nothing after it could make it give back a character): the same matches,
# found sooner.
_PATTERN = r"'(?:[stmd]|re|ve|ll)| ?[{L}]++| ?[{N}]++| ?[^{S}{L}{N}]++|[{S}]+(?![^{S}])|[{S}]++"
_PLAIN_PRE_TOKENIZER = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
_CACHE_LIMIT = 1 << 19  # distinct pre-tokens remembered while encoding (about 80 MB), then forgotten
_FEED_CHARS = 1 << 16  # characters per string handed to the trainer (longer ones cost it memory and time)
# Texts longer than this are split and encoded in worker processes (one per CPU): the first this many
# characters go in this process, so a small corpus starts none.
PARALLEL_AFTER = 1 << 23
_AHEAD = 2  # texts in flight per worker


def byte_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character table (what HuggingFace's ByteLevel pre-tokenizer writes):
    printable Latin-1 bytes stand for themselves, the others are shifted to code points from 256 up; also a
    str.translate table for latin-1 decoded bytes."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shift = {b: chr(b) for b in kept}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)
            shift += 1
    return table


_TABLE = byte_alphabet()


def byte_level(piece: str) -> str:
    """The library's byte-level spelling of `piece` (its UTF-8 bytes as GPT-2's printable characters)."""
    return piece.encode("utf-8").decode("latin-1").translate(_TABLE)


def is_plain_byte_level(hf_tokenizer: Any) -> bool:
    """Whether the tokenizer is what rnnlab builds: no normalizer, no added tokens, GPT-2's byte-level split
    with no prefix space, a BPE model without dropout. Only then is the split here the library's, and one
    encoding per distinct pre-token the encoding of each."""
    config = json.loads(hf_tokenizer.to_str())
    pre = config.get("pre_tokenizer") or {}
    return (config.get("normalizer") is None and not config.get("added_tokens")
            and all(pre.get(k) == v for k, v in _PLAIN_PRE_TOKENIZER.items()) and set(pre) <= {
                "type", "add_prefix_space", "trim_offsets", "use_regex"}
            and (config.get("model") or {}).get("type") == "BPE"
            and not (config.get("model") or {}).get("dropout"))  # dropout: each occurrence drawn anew


def _ranges(chars: set[str]) -> str:
    """A regex character set's inside matching exactly `chars`, as runs of consecutive code points."""
    points = sorted(map(ord, chars))
    runs, lo = [], 0
    for i in range(1, len(points) + 1):
        if i == len(points) or points[i] != points[i - 1] + 1:
            a, b = re.escape(chr(points[lo])), re.escape(chr(points[i - 1]))
            runs.append(a if lo == i - 1 else f"{a}-{b}")
            lo = i
    return "".join(runs)


class ByteLevelSplitter:
    """GPT-2's pre-token split of a text, equal to the library's ByteLevel(add_prefix_space=False) split."""

    def __init__(self) -> None:
        from tokenizers import pre_tokenizers

        self._library = pre_tokenizers.ByteLevel(add_prefix_space=False)
        self._classes: dict[str, set[str]] = {"L": set(), "N": set(), "S": set(), "O": set()}
        self._regex: re.Pattern | None = None
        self._classify(map(chr, range(128)))  # ASCII, and one of each class: no class of the pattern is empty

    def _classify(self, chars: Iterable[str]) -> None:
        """Put each character in the class the library's regex gives it: a letter keeps "a" + c one
        pre-token, a number keeps "1" + c one, any other non-space keeps "!" + c one; else a space."""
        count = self._library.pre_tokenize_str
        for c in chars:
            cls = ("L" if len(count("a" + c)) == 1 else "N" if len(count("1" + c)) == 1
                   else "O" if len(count("!" + c)) == 1 else "S")
            self._classes[cls].add(c)
        spelled = {k: _ranges(v) for k, v in self._classes.items()}
        self._regex = re.compile(_PATTERN.format(**{k: spelled[k] for k in "LNS"}), re.DOTALL)
        self._unknown = re.compile("[^" + _ranges(set().union(*self._classes.values())) + "]")

    def split(self, text: str) -> list[str]:
        """The pre-tokens of `text`, in order; "".join of them is `text`."""
        if self._unknown.search(text):  # a character not classified yet
            self._classify(sorted(set(text) - set().union(*self._classes.values())))
        return self._regex.findall(text)


class _Numbering(dict):
    """pre-token -> its row: the number of distinct pre-tokens seen before it (rows given on first sight)."""

    def __missing__(self, piece: str) -> int:
        row = len(self)
        self[piece] = row
        return row


class _Index(_Numbering):
    """pre-token -> its row in the encoder's table, adding (encoding once) each pre-token not seen yet."""

    def __init__(self, encoder: ByteLevelEncoder):
        super().__init__()
        self.encoder = encoder

    def __missing__(self, piece: str) -> int:
        row = super().__missing__(piece)
        self.encoder._add(piece)
        return row


def _encodings(model: Any, pieces: Iterable[str]) -> tuple[list[int], list[int]]:
    """The model's ids of each piece, back to back, and how many each has."""
    ids: list[int] = []
    lengths: list[int] = []
    for piece in pieces:
        tokens = model.tokenize(byte_level(piece))
        ids.extend(token.id for token in tokens)
        lengths.append(len(tokens))
    return ids, lengths


def _gather(ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The encodings of rows[0], rows[1], ... back to back, from a table of encodings (ids[starts[r]:][:lengths[r]])."""
    if not rows.size:
        return np.zeros(0, dtype=np.int64)
    n = lengths[rows]
    ends = np.cumsum(n)
    # position k of the output is token (k - where its piece's run begins) of that piece's encoding
    offsets = np.arange(int(ends[-1]), dtype=np.int64) - np.repeat(ends - n, n)
    return ids[np.repeat(starts[rows], n) + offsets]


class ByteLevelEncoder:
    """The ids the library gives a text (`encode(text, add_special_tokens=False).ids`), for a tokenizer
    that `is_plain_byte_level`: each distinct pre-token encoded once by its model, then looked up."""

    def __init__(self, hf_tokenizer: Any, splitter: ByteLevelSplitter | None = None):
        self._model = hf_tokenizer.model
        self._splitter = splitter or ByteLevelSplitter()
        self._reset()

    def _reset(self) -> None:
        self._index = _Index(self)
        self._new_ids: list[int] = []
        self._new_lengths: list[int] = []
        self._ids = np.zeros(0, dtype=np.int64)
        self._lengths = np.zeros(0, dtype=np.int64)

    def _add(self, piece: str) -> None:
        ids, lengths = _encodings(self._model, (piece,))
        self._new_ids.extend(ids)
        self._new_lengths.extend(lengths)

    def encode(self, text: str) -> np.ndarray:
        if len(self._index) > _CACHE_LIMIT:
            self._reset()
        pieces = self._splitter.split(text)
        rows = np.fromiter(map(self._index.__getitem__, pieces), dtype=np.int64, count=len(pieces))
        if self._new_lengths:
            self._ids = np.concatenate([self._ids, np.asarray(self._new_ids, dtype=np.int64)])
            self._lengths = np.concatenate([self._lengths, np.asarray(self._new_lengths, dtype=np.int64)])
            self._starts = np.cumsum(self._lengths) - self._lengths
            self._new_ids.clear()
            self._new_lengths.clear()
        return _gather(self._ids, self._starts, self._lengths, rows)


class PreTokens:
    """The pre-tokens of a text: each distinct one numbered in order of first appearance, with its count;
    with `rows_path`, also the text itself as the numbers of its pre-tokens in turn (int32, written there),
    so that it is encoded, once the tokenizer is trained, without being split again (`encode`)."""

    def __init__(self, rows_path: str | os.PathLike | None = None) -> None:
        self.numbering = _Numbering()
        self._counts = np.zeros(1 << 16, dtype=np.int64)
        self.rows_path = rows_path
        self._rows: BinaryIO | None = open(rows_path, "wb") if rows_path is not None else None  # noqa: SIM115

    def add(self, distinct: list[str], rows: np.ndarray) -> None:
        """The next text's pre-tokens: its distinct ones, and the text as positions in `distinct`."""
        numbers = np.fromiter(map(self.numbering.__getitem__, distinct), dtype=np.int64, count=len(distinct))
        if len(self.numbering) > self._counts.size:
            grown = max(2 * self._counts.size, len(self.numbering))
            self._counts = np.concatenate([self._counts, np.zeros(grown - self._counts.size, dtype=np.int64)])
        self._counts[numbers] += np.bincount(rows, minlength=len(distinct))  # (numbers has no repeats)
        if self._rows is not None:
            numbers.astype(np.int32)[rows].tofile(self._rows)

    def close(self) -> None:
        if self._rows is not None:
            self._rows.close()

    def items(self) -> Iterator[tuple[str, int]]:
        """(pre-token, count), in order of first appearance."""
        return zip(self.numbering, map(int, self._counts[:len(self.numbering)]))

    def encode(self, hf_tokenizer: Any, block: int = 1 << 22) -> Iterator[np.ndarray]:
        """The recorded text's ids (ByteLevelEncoder's), `block` pre-tokens at a time: each distinct
        pre-token encoded once by the tokenizer's model, then the rows looked up. Once only: the pre-tokens
        themselves are let go once encoded (their table is all the rows need)."""
        ids, lengths = (np.asarray(a, dtype=np.int64) for a in _encodings(hf_tokenizer.model, self.numbering))
        self.numbering = _Numbering()
        starts = np.cumsum(lengths) - lengths
        with open(self.rows_path, "rb") as fh:
            while (rows := np.fromfile(fh, dtype=np.int32, count=block)).size:
                yield _gather(ids, starts, lengths, rows)


def count_pre_tokens(sequences: Iterable[str], rows_path: str | os.PathLike | None = None) -> PreTokens:
    """The PreTokens of "".join(sequences) (a long stream split in worker processes)."""
    found = PreTokens(rows_path)
    try:
        for distinct, rows in _in_workers(sequences, _split_rows, ByteLevelSplitter, _init_splitter, ()):
            found.add(distinct, rows)
    finally:
        found.close()
    return found


def train_byte_level_bpe(pre_tokens: PreTokens, trainer: Any):
    """A library BPE tokenizer (ByteLevel pre-tokenizer and decoder) trained by `trainer` on the text whose
    pre-tokens were counted: each is handed to the trainer as a word, as often as it occurs."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    def feed() -> Iterator[str]:
        parts: list[str] = []
        held = 0
        for piece, n in pre_tokens.items():
            word = byte_level(piece) + " "
            while n:  # a very frequent word goes in several strings, each at most about _FEED_CHARS long
                take = min(n, max(1, _FEED_CHARS // len(word)))
                parts.append(word * take)
                held += take * len(word)
                n -= take
                if held >= _FEED_CHARS:
                    yield "".join(parts)
                    parts, held = [], 0
        if parts:
            yield "".join(parts)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(feed(), trainer=trainer)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


# ------------------------------------------------------------------------------------ worker processes

_worker: Any = None  # a worker process's splitter or encoder


def _init_splitter() -> None:
    global _worker
    _worker = ByteLevelSplitter()


def _init_encoder(tokenizer_json: str) -> None:
    global _worker
    from tokenizers import Tokenizer

    _worker = ByteLevelEncoder(Tokenizer.from_str(tokenizer_json))


def _split_rows(splitter: ByteLevelSplitter | None, text: str) -> tuple[list[str], np.ndarray]:
    """The text's distinct pre-tokens, in order of first appearance, and the text as their positions."""
    pieces = (splitter or _worker).split(text)
    numbering = _Numbering()
    rows = np.fromiter(map(numbering.__getitem__, pieces), dtype=np.int32, count=len(pieces))
    return list(numbering), rows


def _encode(encoder: ByteLevelEncoder | None, text: str) -> np.ndarray:
    ids = (encoder or _worker).encode(text)
    return ids.astype(np.uint32) if ids.size and int(ids.max()) < 1 << 32 else ids  # half the bytes to send


def _in_workers(texts: Iterable[str], work: Callable, local: Callable[[], Any], init: Callable,
                initargs: tuple) -> Iterator[Any]:
    """work(state, text) for each text, in order: the first PARALLEL_AFTER characters in this process
    (state = local()), the rest in worker processes (state None: the worker's own, made by init), a few
    texts in flight per worker, so that memory does not grow with the corpus."""
    texts = iter(texts)
    state, done = local(), 0
    for text in texts:
        yield work(state, text)
        done += len(text)
        if done >= PARALLEL_AFTER and usable_cpus() > 1:
            break
    else:
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the library's Rust thread pool may be running in this process.
    workers = usable_cpus()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=init,
                             initargs=initargs) as pool:
        pending: deque = deque()
        for text in texts:
            pending.append(pool.submit(work, None, text))
            if len(pending) >= workers * _AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def encode_texts(hf_tokenizer: Any, texts: Iterable[str]) -> Iterator[np.ndarray]:
    """ByteLevelEncoder(hf_tokenizer).encode of each text, in order; a long stream in worker processes."""
    yield from _in_workers(texts, _encode, lambda: ByteLevelEncoder(hf_tokenizer), _init_encoder,
                           (hf_tokenizer.to_str(),))
