"""A corpus as one flat file of token ids, read through `np.memmap`, so training memory does not grow with it.

    rnnlab prepare CORPUS -o TOKENS_DIR      # or: rnnlab train CORPUS -o MODEL (builds MODEL/tokens)
    rnnlab train TOKENS_DIR -o MODEL

A store is a directory of three files:

    tokens.bin      the ids of the train, valid and test splits back to back, little-endian, in the
                    smallest unsigned dtype that holds the vocabulary (uint8 / uint16 / uint32)
    tokenizer.json  the tokenizer that wrote them
    tokens.json     the sidecar: format version, dtype, token count, the tokenizer's sha256, each split's
                    token range and character count, the source files with their sizes and sha256, where
                    each file begins, the fingerprint of the training text and the data settings

Each split holds the ids of `SequenceObjective.encode` (the start-of-text context, then the split's text),
so a store gives the very ids and splits the in-memory path gives. Building reads the corpus at most
three times, one file at a time (characters, tokenizer, ids) and encodes it in chunks cut where no token
can span (corpus.safe_chunks); with --val-file a new vocabulary is learned in the describing pass, and a
new BPE store's training ids come from the pre-tokens its training recorded, not from another reading.
tokens.json is written last and removed first, so a directory without it is not a store, and a store
whose tokens.bin has another size than it says is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import _io
from rnnlab.config import DataConfig
from rnnlab.data.corpus import (
    CHUNK_CHARS,
    PieceReader,
    corpus_files,
    corpus_pieces,
    iter_documents,
    read_ahead,
    safe_chunks,
    split_sizes,
)
from rnnlab.data.registry import resolve_corpus
from rnnlab.data.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    build_tokenizer_from_chunks,
    load_tokenizer,
    save_tokenizer,
)
from rnnlab.errors import ConfigError, DataError, ModelDirError, RnnlabError

FORMAT_VERSION = 1
META = "tokens.json"
TOKENS = "tokens.bin"
TOKENIZER = "tokenizer.json"
SPLITS = ("train", "valid", "test")
FUSED_VOCABULARY = True  # a vocabulary learned while the corpus is described, when it can be (_build)
RECORDED_PRE_TOKENS = True  # a new BPE store's training ids looked up from the pre-tokens its training counted
Log = Callable[[str], None]


def dtype_for(vocab_size: int) -> np.dtype:
    """The smallest unsigned little-endian dtype that holds every id below `vocab_size`."""
    for dtype in ("<u1", "<u2", "<u4"):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ConfigError(f"a vocabulary of {vocab_size} tokens does not fit a 32-bit token store")


def tokenizer_sha256(tokenizer: Tokenizer) -> str:
    return hashlib.sha256(json.dumps(tokenizer.to_dict(), sort_keys=True).encode("utf-8")).hexdigest()


def is_token_store(path: str | os.PathLike) -> bool:
    return (Path(path) / META).is_file()


@dataclass
class TokenStore:
    """An opened store: its sidecar, its tokenizer and its splits as read-only memory maps."""

    path: Path
    meta: dict[str, Any]
    tokenizer: Tokenizer

    @property
    def data_config(self) -> DataConfig:
        return DataConfig.from_dict(self.meta["data"])

    def ids(self, split: str) -> np.ndarray:
        """The split's ids (start-of-text context first), a view of the map: nothing is read until used."""
        lo, hi = self.meta["splits"][split]["tokens"]
        if hi == lo:
            return np.zeros(0, dtype=self.meta["dtype"])
        return self._map()[lo:hi]

    def chars(self, split: str) -> int:
        return self.meta["splits"][split]["chars"]

    def text_tokens(self, split: str) -> int:
        """Tokens of the split's text, not counting the start-of-text context."""
        lo, hi = self.meta["splits"][split]["tokens"]
        return max(hi - lo - self.meta["start_tokens"], 0)

    def _map(self) -> np.memmap:
        if getattr(self, "_memmap", None) is None:
            self._memmap = np.memmap(self.path / TOKENS, dtype=self.meta["dtype"], mode="r",
                                     shape=(self.meta["tokens"],))
        return self._memmap


def open_store(path: str | os.PathLike, check_ids: bool = True) -> TokenStore:
    """Open a store written by `prepare`; anything missing, foreign or inconsistent is a DataError.
    `check_ids` reads the whole token file once (prepare, which has just written it, skips that)."""
    path = Path(path)
    if not is_token_store(path):
        raise DataError(f"{path} is not a token store (it has no {META}; build one with `rnnlab prepare`)")
    try:
        meta = _io.read_json(path / META)
    except ModelDirError as exc:
        raise DataError(exc.message) from exc
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise DataError(f"{path / META}: token store format_version {version!r} is not supported")
    if meta.get("complete") is False:
        raise DataError(f"{path} is an incomplete token store (its `rnnlab prepare` was interrupted); "
                        "prepare it again")
    try:
        _check_meta(meta)
        size = (path / TOKENS).stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path} is an incomplete token store: {TOKENS} is missing") from None
    except (KeyError, TypeError, ValueError, RnnlabError) as exc:
        detail = exc.message if isinstance(exc, RnnlabError) else f"{type(exc).__name__}: {exc}"
        raise DataError(f"{path / META} is malformed ({detail})") from None
    expected = meta["tokens"] * np.dtype(meta["dtype"]).itemsize
    if size != expected:
        raise DataError(f"{path / TOKENS} holds {size} bytes but {META} says {meta['tokens']} {meta['dtype']} "
                        f"tokens ({expected} bytes); rebuild the store with `rnnlab prepare`")
    try:
        tokenizer = load_tokenizer(path / TOKENIZER)
    except ModelDirError as exc:
        raise DataError(exc.message) from exc
    if tokenizer_sha256(tokenizer) != meta.get("tokenizer_sha256"):
        raise DataError(f"{path / TOKENIZER} is not the tokenizer that wrote {TOKENS}")
    store = TokenStore(path, meta, tokenizer)
    if check_ids:
        _check_ids(store)
    return store


def _check_meta(meta: dict[str, Any]) -> None:
    """Every field a reader uses, of its kind and in range (a KeyError, TypeError or ValueError if not)."""
    def count(value: Any, what: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{what} is not a count: {value!r}")
        return value

    if meta["dtype"] not in ("|u1", "<u2", "<u4"):
        raise ValueError(f"dtype {meta['dtype']!r} is not one of |u1, <u2, <u4")
    total, start = count(meta["tokens"], "tokens"), count(meta["start_tokens"], "start_tokens")
    if total == 0:
        raise ValueError("it holds no tokens")
    for name in SPLITS:
        split = meta["splits"][name]
        lo, hi = split["tokens"]
        count(split["chars"], f"{name} chars")
        if not count(lo, name) <= count(hi, name) <= total or (hi > lo and hi - lo < start):
            raise ValueError(f"the {name} split's token range {[lo, hi]} lies outside the {total} tokens")
    if not isinstance(meta["train_sha256"], str):
        raise ValueError("train_sha256 is not a string")
    DataConfig.from_dict(meta["data"])


def _check_ids(store: TokenStore, block: int = 1 << 24) -> None:
    """Every id below the vocabulary (a damaged tokens.bin fails here, not as an index error in training).
    Read in blocks through a plain file, not the map: the map's pages would stay in the process's RSS."""
    with open(store.path / TOKENS, "rb") as fh:
        while (ids := np.fromfile(fh, dtype=store.meta["dtype"], count=block)).size:
            if int(ids.max()) >= store.tokenizer.vocab_size:
                raise DataError(f"{store.path / TOKENS} holds ids outside the vocabulary of "
                                f"{store.tokenizer.vocab_size} tokens; rebuild the store with `rnnlab prepare`")


# ---------------------------------------------------------------------------------------------- building

@dataclass(frozen=True)
class _Source:
    """One corpus (CORPUS, --val-file or --test-file) read as a stream of pieces."""

    path: Path
    reading: dict[str, Any]

    def pieces(self) -> Iterator[str]:
        return corpus_pieces(self.path, **self.reading)


def reading_options(data: DataConfig) -> dict[str, Any]:
    """How `data` says corpus files are read (read_corpus's and iter_documents' options)."""
    return {"keep_header": data.keep_header, "encoding": data.encoding, "errors": data.errors}


def corpus_sources(corpus: str | os.PathLike, data: DataConfig, val_file=None, test_file=None,
                   data_dir=None) -> dict[str, _Source | None]:
    """Where each split's text comes from: the corpus itself, or the files given for valid and test."""
    files = resolve_corpus(str(corpus), data_dir=data_dir)
    reading = reading_options(data)
    valid, test = val_file or files.valid, test_file or files.test
    for given in (valid, test):
        if given is not None:
            corpus_files(given)  # a missing --val-file/--test-file fails here, before any work or output
    return {"corpus": _Source(Path(files.train), reading),
            "valid": None if valid is None else _Source(Path(valid), reading),
            "test": None if test is None else _Source(Path(test), reading)}


def prepare(corpus: str | os.PathLike, out_dir: str | os.PathLike, data: DataConfig | None = None, *,
            tokenizer: Tokenizer | None = None, extend: bool = False, val_file=None, test_file=None,
            data_dir=None, overwrite: bool = False, log: Log | None = None) -> TokenStore:
    """Build the token store of `corpus` (a file, folder or registered name) in `out_dir` and open it.

    The tokenizer is trained on the training split (or `tokenizer` is reused); reading, cleaning and the
    split are `data.splits.load_corpus_splits`'s. `extend` lets a given char tokenizer learn the training split's
    new characters (fine-tuning). An existing store is replaced only with `overwrite`; any other
    non-empty directory is refused.
    """
    data = data or DataConfig()
    log = log or (lambda _line: None)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)
    created = not out_dir.exists()
    try:
        return _build(corpus, out_dir, data, tokenizer, extend, val_file, test_file, data_dir, log)
    except BaseException:
        if created:  # a failed build leaves no trace of a directory it made
            remove_store(out_dir)
        raise


def remove_store(path: Path) -> None:
    """Delete a store's own files, and its directory if that leaves it empty; nothing else."""
    if not path.is_dir():
        return
    for name in (META, TOKENS, TOKENIZER):
        with contextlib.suppress(OSError):
            (path / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.rmdir()


def _build(corpus, out_dir: Path, data: DataConfig, tokenizer: Tokenizer | None, extend: bool, val_file,
           test_file, data_dir, log: Log) -> TokenStore:
    with contextlib.ExitStack() as scratch:
        rows_path = None
        if RECORDED_PRE_TOKENS and tokenizer is None and data.level == "bpe":
            # A new BPE tokenizer records the training split's pre-tokens as it counts them, and the split's
            # ids are looked up from that record rather than encoded from a second reading.
            rows_path = scratch.enter_context(_io.scratch_file(_io.make_dir(out_dir), "train-pre-tokens"))
        return _build_from(corpus_sources(corpus, data, val_file, test_file, data_dir), corpus, out_dir, data,
                           tokenizer, extend, log, rows_path)


def _build_from(sources: dict[str, _Source | None], corpus, out_dir: Path, data: DataConfig,
                tokenizer: Tokenizer | None, extend: bool, log: Log, rows_path: Path | None) -> TokenStore:
    given = {"sha256": tokenizer_sha256(tokenizer), "extend": extend} if tokenizer is not None else None
    train_hash = hashlib.sha256()
    read = dict.fromkeys(SPLITS, 0)  # characters of each split, as its ids' pass reads them

    def reading(name: str, chunks: Iterator[str]) -> Iterator[str]:
        for chunk in chunks:
            if name == "train":
                train_hash.update(chunk.encode("utf-8"))
            read[name] += len(chunk)
            yield chunk

    def train(chunks: Iterator[str]) -> Tokenizer:
        nonlocal pre_tokens
        if rows_path is None:
            return build_tokenizer_from_chunks(chunks, data)
        built, pre_tokens = BPETokenizer.train_recording(reading("train", chunks), data.vocab_size, data.lower,
                                                         rows_path)
        return built

    pre_tokens = None
    built = None
    if FUSED_VOCABULARY and tokenizer is None and sources["valid"] is not None \
            and (data.level == "char" and not data.lower or rows_path is not None):
        # The training split is the whole corpus: its vocabulary is learned in the pass that describes it
        # (one reading fewer). Not for char with lower-casing, which may depend on where the text is cut.
        pieces, described_corpus = _described_pieces(sources["corpus"])
        log(f"building the {data.level} vocabulary from the corpus (its training split)")
        built = train(read_ahead(pieces))
        documents, described, chars = _describe(sources, described_corpus)
    else:
        documents, described, chars = _describe(sources)
    sizes = _split_sizes(chars, data)
    if sizes["train"] == 0:
        raise DataError("cannot build a vocabulary from empty training text")
    if built is not None:
        tokenizer = built
    elif tokenizer is None:
        log(f"building the {data.level} vocabulary from {sizes['train']:,} training characters")
        tokenizer = train(_split_chunks(sources, sizes, data, "train"))
    elif extend and isinstance(tokenizer, CharTokenizer):
        seen = CharTokenizer.train_chunks(_split_chunks(sources, sizes, data, "train"), lower=tokenizer.lower)
        tokenizer = tokenizer.extend(seen.chars)  # (extend keeps only the characters it does not know)
    dtype = dtype_for(tokenizer.vocab_size)
    _io.make_dir(out_dir)
    # Marked incomplete before its tokens are replaced: an interrupted build (a full disk) leaves a store
    # that says so, which no run trains on and the next prepare rebuilds.
    _io.write_json(out_dir / META, {"format_version": FORMAT_VERSION, "complete": False, "source": str(corpus)})
    start = np.asarray(tokenizer.start_ids(), dtype=dtype)
    splits: dict[str, Any] = {}

    def write_tokens(tmp: Path) -> None:
        at = 0
        with open(tmp, "wb") as fh:
            for name in SPLITS:
                begin = at
                if sizes[name]:
                    fh.write(start.tobytes())
                    at += start.size
                    if name == "train" and pre_tokens is not None:
                        encoded = tokenizer.encode_recorded(pre_tokens)
                    else:
                        encoded = tokenizer.encode_chunks(
                            reading(name, read_ahead(_split_chunks(sources, sizes, data, name))))
                    for ids in encoded:
                        ids.astype(dtype, copy=False).tofile(fh)
                        at += ids.size
                splits[name] = {"tokens": [begin, at], "chars": read[name]}
                log(f"{name}: {read[name]:,} characters, {at - begin:,} tokens")

    _io.atomic_write(out_dir / TOKENS, write_tokens)
    save_tokenizer(tokenizer, out_dir / TOKENIZER)
    total = splits["test"]["tokens"][1]
    meta = {"format_version": FORMAT_VERSION, "dtype": dtype.str, "tokens": total,
            "vocab_size": tokenizer.vocab_size, "tokenizer_sha256": tokenizer_sha256(tokenizer),
            "tokenizer_given": given,
            "start_tokens": int(start.size), "splits": splits, "train_sha256": train_hash.hexdigest(),
            "source": str(corpus), "sources": described, "documents": documents, "data": data.to_dict()}
    _io.write_json(out_dir / META, meta)
    return open_store(out_dir, check_ids=False)


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir} exists and is not a directory")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not is_token_store(out_dir):
        raise DataError(f"{out_dir} is not empty and is not a token store; refusing to write into it "
                        "(choose another -o)")
    if not overwrite and not _is_incomplete(out_dir):
        raise DataError(f"{out_dir} already holds a token store; pass --overwrite to replace it")


def _is_incomplete(path: Path) -> bool:
    """A store whose build was interrupted: its sidecar is rnnlab's and says so."""
    try:
        meta = json.loads((path / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format_version") == FORMAT_VERSION and meta.get("complete") is False


def _describe(sources: dict[str, _Source | None],
              corpus: dict[str, Any] | None = None) -> tuple[list[dict], list[dict], dict[str, int]]:
    """(where each file of the corpus begins, in characters; every source file with its size and sha256;
    the characters of each source's text). `corpus`: the corpus's part, already found (`_described_pieces`)."""
    documents, described, chars = [], [], {}
    for role, source in sources.items():
        if source is None:
            continue
        if role == "corpus" and corpus is not None:
            documents, described, chars["corpus"] = corpus["documents"], corpus["described"], corpus["chars"]
            continue
        at = 0
        for i, doc in enumerate(iter_documents(source.path, digest=True, **source.reading)):
            described.append({"role": role, "path": str(doc.path), "bytes": doc.size, "sha256": doc.sha256})
            at += 1 if i else 0  # the newline joining it to the file before
            if role == "corpus":
                documents.append({"source": len(described) - 1, "char": at})
            at += doc.chars
        chars[role] = at
    return documents, described, chars


def _described_pieces(source: _Source) -> tuple[Iterator[str], dict[str, Any]]:
    """The corpus's text as pieces (`corpus_pieces`'s), and `_describe`'s part for it, filled in as the
    pieces are read (documents, source files, characters): one reading does both."""
    part: dict[str, Any] = {"documents": [], "described": [], "chars": 0}

    def pieces() -> Iterator[str]:
        for i, doc in enumerate(iter_documents(source.path, digest=True, **source.reading)):
            part["described"].append({"role": "corpus", "path": str(doc.path), "bytes": doc.size,
                                      "sha256": doc.sha256})
            if i:
                part["chars"] += 1
                yield "\n"
            part["documents"].append({"source": len(part["described"]) - 1, "char": part["chars"]})
            part["chars"] += doc.chars
            yield from doc.pieces()

    return pieces(), part


def _digests(sources: dict[str, _Source | None]) -> list[dict[str, Any]]:
    """`_describe`'s list of source files (role, path, bytes, sha256) from their bytes alone: whether a store
    is still the corpus's is known without decoding the corpus again."""
    out = []
    for role, source in sources.items():
        for file in corpus_files(source.path) if source is not None else ():
            digest, size = hashlib.sha256(), 0
            try:
                with open(file, "rb") as fh:
                    while block := fh.read(1 << 24):
                        digest.update(block)
                        size += len(block)
            except OSError as exc:
                raise DataError(f"cannot read {file}: {exc.strerror or exc}") from exc
            out.append({"role": role, "path": str(file), "bytes": size, "sha256": digest.hexdigest()})
    return out


def _split_sizes(chars: dict[str, int], data: DataConfig) -> dict[str, int]:
    """Characters of each split, as split_text cuts the corpus (or the corpus whole when --val-file)."""
    n = chars["corpus"]
    if "valid" in chars:
        return {"train": n, "valid": chars["valid"], "test": chars.get("test", 0)}
    n_train, n_valid = split_sizes(n, data.split)
    return {"train": n_train, "valid": n_valid, "test": chars.get("test", n - n_train - n_valid)}


def _split_chunks(sources: dict[str, _Source | None], sizes: dict[str, int], data: DataConfig,
                  split: str) -> Iterator[str]:
    """The split's text in safe chunks, read from its source (skipping what comes before it)."""
    own = {"valid": sources["valid"], "test": sources["test"]}.get(split)
    if own is not None:
        pieces = PieceReader(own.pieces()).take(sizes[split])
    else:
        reader = PieceReader(sources["corpus"].pieces())
        skip = 0 if split == "train" else sizes["train"] if split == "valid" else sizes["train"] + sizes["valid"]
        for _ in reader.take(skip):
            pass
        pieces = reader.take(sizes[split])
    return safe_chunks(pieces, CHUNK_CHARS, cut_anywhere=data.level == "char" and not data.lower)


def prepare_or_reuse(corpus: str | os.PathLike, out_dir: str | os.PathLike, data: DataConfig, *,
                     tokenizer: Tokenizer | None = None, extend: bool = False, val_file=None, test_file=None,
                     data_dir=None, log: Log | None = None) -> TokenStore:
    """The store of `corpus` in `out_dir`: the one there when it was built from the same files (sizes and
    sha256) with the same settings and the same given tokenizer, else a new one in its place."""
    given = {"sha256": tokenizer_sha256(tokenizer), "extend": extend} if tokenizer is not None else None
    out_dir = Path(out_dir)
    if is_token_store(out_dir):
        try:
            store = open_store(out_dir)
        except DataError:
            store = None
        if store is not None and store.meta["data"] == data.to_dict() and store.meta["source"] == str(corpus) \
                and store.meta.get("tokenizer_given") == given \
                and _digests(corpus_sources(corpus, data, val_file, test_file, data_dir)) == store.meta["sources"]:
            return store
    return prepare(corpus, out_dir, data, tokenizer=tokenizer, extend=extend, val_file=val_file,
                   test_file=test_file, data_dir=data_dir, overwrite=True, log=log)
