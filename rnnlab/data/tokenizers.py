"""Text <-> token ids: one `Tokenizer` interface with character, word and byte-level BPE vocabularies.

Every tokenizer is trained on the training text only, serialises to plain JSON (never pickle) and
travels with the model, so `decode` of a trained model's output gives back text.

Word tokens and spacing
-----------------------
A word model must give back text laid out as it was, so the word tokenizer records spacing as
exceptions to a rule instead of throwing spaces away:

    text     Mowgli, come!        He said "no".
    tokens   Mowgli , come !      He said " no " .      <- the rule predicts every gap: no extra token
    text     a+b                  x  y
    tokens   a <glue> + <glue> b  x "  " y              <- <glue>: no space where the rule wants one;
                                                           an unusual gap travels as a whitespace token

The rule (`_gap`): no space at the start, around a newline, before closing punctuation (.,;:!?)]}”’%…),
after opening punctuation (([{“‘¿¡$#), on either side of a joiner (- – — /); straight double quotes
and underscores alternate between opening and closing; one space everywhere else. Encoding emits a
marker only where the text disagrees with the rule, so ordinary prose has almost none, and
decode(encode(text)) == text exactly whenever every piece is in the vocabulary, whatever the spacing.
Because each gap is decided before its token is written, decode(ids[:k]) is a prefix of decode(ids),
which lets generated text stream.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnlab import _io
from rnnlab.config import DataConfig
from rnnlab.data.corpus import safe_chunks
from rnnlab.errors import ConfigError, DataError, ModelDirError, RnnlabError, VocabularyError

if TYPE_CHECKING:
    from rnnlab.data.bytelevel import PreTokens

FORMAT_VERSION = 1
UNK = "<unk>"
GLUE = "<glue>"
PAD = "<pad>"
KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
BYTE_ALPHABET = 256
_UNKNOWN_MODES = ("error", "replace")
_MAX_LISTED = 10


class Tokenizer(ABC):
    """What every vocabulary offers: ids for text, text for ids, and a JSON form."""

    kind: str = ""
    unk_id: int | None = None
    pad_id: int | None = None
    lower = False  # lower-case every text before encoding it: training text, prompts, evaluation text
    _items = "tokens"  # how the unknown-items message names them
    # The start of a text: a newline. Every line of the training stream begins after one, so the model
    # knows what follows it (a word begins); files of a folder corpus are joined by one, and training,
    # generation and evaluation all read it first (see `start_ids`).
    START_TEXT = "\n"

    def normalize(self, text: str) -> str:
        """The text as this tokenizer sees it (lower-cased when `lower`)."""
        return text.lower() if self.lower else text

    def start_ids(self) -> list[int]:
        """The start-of-text context: the ids of START_TEXT, or [] when the vocabulary lacks it."""
        if self.unknown_items(self.START_TEXT):
            return []
        return self._encode(self.START_TEXT)

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids; every id `encode` produces is below it."""

    def encode(self, text: str, unknown: str = "replace", *, what: str = "prompt") -> list[int]:
        """Token ids of `text`. unknown="replace" maps unknown items to <unk>; "error" raises naming them."""
        if unknown not in _UNKNOWN_MODES:
            raise ConfigError(f"--unknown must be one of {', '.join(_UNKNOWN_MODES)} (got {unknown!r})")
        if unknown == "error":
            missing = self.unknown_items(text)
            if missing:
                listed = ", ".join(repr(item) for item in missing[:_MAX_LISTED])
                if len(missing) > _MAX_LISTED:
                    listed += f" and {len(missing) - _MAX_LISTED} more"
                raise VocabularyError(f"{what} has {self._items} the model never saw: {listed} "
                                      f"(use --unknown replace to {self._replace_hint()})")
        return self._encode(text)

    def _replace_hint(self) -> str:
        return f"map them to {UNK}"

    def encode_chunks(self, chunks: Iterable[str]) -> Iterator[np.ndarray]:
        """The ids of "".join(chunks) (unknown items as <unk>), as consecutive integer arrays, for texts too large
        to encode at once. Exact when each chunk ends where a whitespace run begins after a non-space
        character (corpus.safe_chunks cuts there): no token, word or BPE pre-token spans such a cut."""
        for chunk in chunks:
            yield np.asarray(self._encode(chunk), dtype=np.int64)

    @abstractmethod
    def _encode(self, text: str) -> list[int]: ...

    @abstractmethod
    def unknown_items(self, text: str) -> list[str]:
        """The distinct items of `text` outside the vocabulary, in order of first appearance."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str: ...

    @abstractmethod
    def token_text(self, id: int) -> str:
        """The readable text of one token, for displays of the most likely next tokens."""

    def decoder(self) -> IncrementalDecoder:
        """A fresh `IncrementalDecoder`: the text of ids fed one at a time, in O(1) per id."""
        return _Redecoding(self)

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        ids = [int(i) for i in ids]
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise VocabularyError(f"token id {i} is outside the vocabulary of {self.vocab_size} tokens; "
                                      "the model and the tokenizer do not belong together")
        return ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _ranked(counts: Counter, min_count: int, limit: int | None) -> list[str]:
    """Items by descending count, ties by first appearance, at least `min_count`, at most `limit`."""
    # Counter keeps insertion (first-appearance) order and most_common sorts stably.
    ranked = [item for item, n in counts.most_common() if n >= min_count]
    return ranked if limit is None else ranked[:max(limit, 0)]


def _in_order_of_appearance(text: str, missing: set[str]) -> list[str]:
    return sorted(missing, key=text.index)


# ----------------------------------------------------------------------------------------------- char


class CharTokenizer(Tokenizer):
    """One token per character; id 0 is <unk>, then the characters in code-point order."""

    kind = "char"
    unk_id = 0
    _items = "characters"
    # <unk> decodes to U+FFFD, Unicode's own "unknown character", so generated text keeps one character
    # per token instead of growing a five-letter "<unk>" word in the middle of a line.
    UNK_TEXT = "\ufffd"

    def __init__(self, chars: Iterable[str], lower: bool = False):
        chars = list(chars)
        if any(not isinstance(c, str) or len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer needs distinct single characters")
        if not isinstance(lower, bool):
            raise ValueError("lower must be true or false")
        self.lower = lower
        self._chars = chars
        self._ids = {c: i + 1 for i, c in enumerate(chars)}
        self._decode_table = [self.UNK_TEXT, *chars]

    @classmethod
    def train(cls, text: str, max_vocab: int | None = None, min_count: int = 1,
              lower: bool = False) -> CharTokenizer:
        """Vocabulary of `text`: its distinct characters (the most frequent `max_vocab - 1` ones, if set)."""
        return cls.train_chunks([text], max_vocab, min_count, lower)

    @classmethod
    def train_chunks(cls, chunks: Iterable[str], max_vocab: int | None = None, min_count: int = 1,
                     lower: bool = False) -> CharTokenizer:
        """`train` on the text "".join(chunks), read one chunk at a time."""
        if max_vocab is None and min_count <= 1:
            seen = np.zeros(0x110000, dtype=bool)  # one flag per code point: a set of characters at numpy speed
            for chunk in chunks:
                text = chunk.lower() if lower else chunk
                points = _code_points(text)
                seen[[ord(c) for c in set(text)] if points is None else points] = True
            return cls([chr(i) for i in np.flatnonzero(seen)], lower=lower)
        counts: Counter = Counter()
        for chunk in chunks:
            counts.update(chunk.lower() if lower else chunk)
        kept = _ranked(counts, min_count, None if max_vocab is None else max_vocab - 1)
        return cls(sorted(kept), lower=lower)

    @property
    def vocab_size(self) -> int:
        return len(self._chars) + 1

    @property
    def chars(self) -> tuple[str, ...]:
        """The known characters in id order (id = position + 1)."""
        return tuple(self._chars)

    def extend(self, chars: Iterable[str]) -> CharTokenizer:
        """A tokenizer that also knows `chars`: existing ids unchanged, new characters appended in order."""
        new = sorted(set(self.normalize("".join(chars))) - self._ids.keys())
        return CharTokenizer(self._chars + new, lower=self.lower)

    def _encode(self, text: str) -> list[int]:
        lookup = self._ids.get
        return [lookup(c, 0) for c in self.normalize(text)]

    def encode_chunks(self, chunks: Iterable[str]) -> Iterator[np.ndarray]:
        # A table indexed by every code point (4 MB): the same ids as _encode, two orders of magnitude faster.
        # UTF-16 units (the usual case) index a 65,536-entry table of the ids' own width instead: 128 KB that
        # stays in cache, and 'clip' skips a bounds check no uint16 index can fail.
        if getattr(self, "_table", None) is None:
            table = np.zeros(0x110000, dtype=np.uint32)  # 0: <unk>
            for c, i in self._ids.items():
                table[ord(c)] = i
            self._table = table
            self._bmp_table = table[:0x10000].astype(np.uint16 if self.vocab_size <= 0x10000 else np.uint32)
        for chunk in chunks:
            points = _code_points(self.normalize(chunk))
            if points is None:  # a lone surrogate: the slow path knows it as <unk>
                yield np.asarray(self._encode(chunk), dtype=np.int64)
            elif points.dtype.itemsize == 2:
                yield np.take(self._bmp_table, points, mode="clip")
            else:
                yield np.take(self._table, points)

    def unknown_items(self, text: str) -> list[str]:
        text = self.normalize(text)
        return _in_order_of_appearance(text, set(text) - self._ids.keys())

    def decode(self, ids: Iterable[int]) -> str:
        table = self._decode_table
        return "".join(table[i] for i in self._check_ids(ids))

    def token_text(self, id: int) -> str:
        (id,) = self._check_ids([id])
        return UNK if id == self.unk_id else self._chars[id - 1]

    def decoder(self) -> IncrementalDecoder:
        return _TableDecoder(self._decode_table)

    def to_dict(self) -> dict[str, Any]:
        # "lower" only when set, so the files of models trained before it existed stay the same.
        return {"format_version": FORMAT_VERSION, "kind": self.kind, "chars": list(self._chars),
                **({"lower": True} if self.lower else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        return cls(data["chars"], lower=data.get("lower", False))


# ----------------------------------------------------------------------------------------------- word

# A word is letters/digits with inner apostrophes (don't, Mowgli’s); a newline is its own piece; a run
# of other whitespace is a gap; any other single character (punctuation, underscore) is a piece.
_PIECES = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|\n|[^\S\n]+|.", re.DOTALL)


def _pieces_of(chunks: Iterable[str], lower: bool) -> Iterator[str]:
    """The word tokenizer's pieces of "".join(chunks): a safe cut is always a piece boundary."""
    return chain.from_iterable(_PIECES.findall(c.lower() if lower else c) for c in chunks)
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}”’%…")
_NO_SPACE_AFTER = frozenset("([{“‘¿¡$#")
_JOINERS = frozenset("-–—/")
_PAIRED = frozenset('"_')  # the same mark opens and closes: which one it is alternates


def _code_points(text: str) -> np.ndarray | None:
    """The code points of `text` as an array, or None for a text Python cannot encode (a lone surrogate).
    UTF-16 when no character lies beyond the BMP (no surrogate pairs): a quarter of UTF-32's time."""
    try:
        units = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
    except UnicodeEncodeError:
        return None
    if units.size == len(text):  # one unit per character: no surrogate pairs
        return units
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def _is_gap(piece: str) -> bool:
    return piece != "\n" and piece.isspace()


def _gap(prev: str | None, token: str, open_marks: set[str]) -> str:
    """The spacing the rule expects between `prev` and `token` (see the module docstring)."""
    if prev is None or prev == "\n" or token == "\n":
        return ""
    if token in _NO_SPACE_BEFORE or prev in _NO_SPACE_AFTER or token in _JOINERS or prev in _JOINERS:
        return ""
    if token in _PAIRED and token in open_marks:  # a closing mark hugs what it closes
        return ""
    if prev in _PAIRED and prev in open_marks:  # an opening mark hugs what it opens
        return ""
    return " "


def _toggle(open_marks: set[str], token: str) -> None:
    if token in _PAIRED:
        open_marks.symmetric_difference_update({token})


class WordTokenizer(Tokenizer):
    """Words, punctuation marks and newlines as tokens, spacing kept as exceptions to a rule.

    Ids: 0 is <unk>, 1 is <glue>, then tokens by descending training frequency (ties by first
    appearance). Limits: with `lower` the text comes back lower-cased; a word with an apostrophe is one
    token ("Mowgli’s" is not "Mowgli" + "’s"); an unknown word decodes as "<unk>"; a gap is one token
    per distinct whitespace run, so indentation costs a token per line.
    """

    kind = "word"
    unk_id = 0
    glue_id = 1
    keras_compat = False
    _items = "words"

    def __init__(self, tokens: Iterable[str], lower: bool = False):
        tokens = [UNK, GLUE, *(t for t in tokens if t not in (UNK, GLUE))]
        if len(set(tokens)) != len(tokens) or any(not isinstance(t, str) or not t for t in tokens):
            raise ValueError("WordTokenizer needs distinct non-empty tokens")
        self.lower = bool(lower)
        self._tokens = tokens
        self._ids = {t: i for i, t in enumerate(tokens)}
        self._gap_ids = frozenset(i for i, t in enumerate(tokens) if _is_gap(t))
        # No known whitespace run is longer than this: spelling an unseen run tries no longer piece.
        self._longest_gap = max((len(t) for t in tokens if _is_gap(t)), default=0)

    @classmethod
    def train(cls, text: str, *, lower: bool | None = None, max_vocab: int | None = None, min_count: int = 1,
              keras_compat: bool = False, oov_token: str | None = None) -> WordTokenizer:
        """Vocabulary of `text`; `max_vocab` counts <unk> and <glue>. keras_compat gives a KerasWordTokenizer."""
        if keras_compat:
            return KerasWordTokenizer.train(text, num_words=max_vocab, oov_token=oov_token,
                                            lower=True if lower is None else lower)
        return cls.train_chunks([text], lower=lower, max_vocab=max_vocab, min_count=min_count)

    @classmethod
    def train_chunks(cls, chunks: Iterable[str], *, lower: bool | None = None, max_vocab: int | None = None,
                     min_count: int = 1) -> WordTokenizer:
        """`train` on the text "".join(chunks) (cut as `encode_chunks` says), read one chunk at a time."""
        lower = bool(lower)
        counts = Counter(cls._stream_pieces(_pieces_of(chunks, lower), lambda piece: piece))
        counts.pop(GLUE, None)  # always in the vocabulary, so it takes no slot of its own
        specials = 2
        kept = _ranked(counts, min_count, None if max_vocab is None else max_vocab - specials)
        return cls(kept, lower=lower)

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def word_index(self) -> dict[str, int]:
        """Token -> id, specials included."""
        return dict(self._ids)

    @staticmethod
    def _stream(text: str, shown: Callable[[str], str]) -> Iterator[str]:
        """Token strings of `text`: pieces plus a <glue> or a whitespace run where the rule is wrong.

        `shown(piece)` is what the piece will decode as (itself, or <unk>), so the gap rule sees exactly
        what `decode` will see.
        """
        return WordTokenizer._stream_pieces(_PIECES.findall(text), shown)

    @staticmethod
    def _stream_pieces(pieces: Iterable[str], shown: Callable[[str], str]) -> Iterator[str]:
        prev: str | None = None
        pending = ""
        open_marks: set[str] = set()
        for piece in pieces:
            if _is_gap(piece):
                pending = piece
                continue
            token = shown(piece)
            if pending != _gap(prev, token, open_marks):
                yield pending or GLUE
            yield piece
            _toggle(open_marks, token)
            prev, pending = token, ""
        if pending:
            yield pending

    def _shown(self, piece: str) -> str:
        return piece if piece in self._ids else UNK

    def _encode(self, text: str) -> list[int]:
        return list(self._ids_of(self._stream(self.normalize(text), self._shown)))

    def encode_chunks(self, chunks: Iterable[str]) -> Iterator[np.ndarray]:
        # One stream over all chunks: the spacing rule's state (open quotes) carries across lines.
        ids = self._ids_of(self._stream_pieces(_pieces_of(chunks, self.lower), self._shown))
        while block := list(islice(ids, 1 << 20)):
            yield np.asarray(block, dtype=np.int64)

    def _ids_of(self, tokens: Iterable[str]) -> Iterator[int]:
        ids = self._ids
        for token in tokens:
            i = ids.get(token)
            if i is not None:
                yield i
            elif _is_gap(token):
                yield from (i for i, _ in self._spell_gap(token))
            else:
                yield self.unk_id

    def _spell_gap(self, run: str) -> Iterator[tuple[int, str]]:
        """(id, text) pieces of a whitespace run never seen whole: longest known runs first, else <unk>.

        Consecutive whitespace tokens decode back to back, so "    " can travel as "  " + "  ".
        Linear in the run's length: no piece longer than the longest known run is tried.
        """
        start = 0
        while start < len(run):
            for end in range(min(len(run), start + self._longest_gap), start, -1):
                i = self._ids.get(run[start:end])
                if i is not None:
                    yield i, run[start:end]
                    break
            else:
                end = start + 1
                yield self.unk_id, run[start]
            start = end

    def unknown_items(self, text: str) -> list[str]:
        text = self.normalize(text)
        missing: dict[str, None] = {}
        for token in self._stream(text, self._shown):
            if token in self._ids:
                continue
            if _is_gap(token):
                for i, piece in self._spell_gap(token):
                    if i == self.unk_id:
                        missing.setdefault(piece, None)
            else:
                missing.setdefault(token, None)
        return list(missing)

    def decode(self, ids: Iterable[int]) -> str:
        out: list[str] = []
        prev: str | None = None
        explicit: str | None = None  # set by a marker: the gap is already written, the rule is off
        open_marks: set[str] = set()
        for i in self._check_ids(ids):
            if i == self.glue_id or i in self._gap_ids:
                if i != self.glue_id:
                    out.append(self._tokens[i])
                explicit = ""
                continue
            token = self._tokens[i]
            out.append(_gap(prev, token, open_marks) if explicit is None else explicit)
            out.append(token)
            _toggle(open_marks, token)
            prev, explicit = token, None
        return "".join(out)

    def token_text(self, id: int) -> str:
        (id,) = self._check_ids([id])
        return self._tokens[id]

    def decoder(self) -> IncrementalDecoder:
        return _WordDecoder(self)

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "kind": self.kind, "keras_compat": False,
                "lower": self.lower, "tokens": self._tokens[2:]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordTokenizer:
        if data.get("keras_compat"):
            return KerasWordTokenizer.from_dict(data)
        return cls(data["tokens"], lower=data["lower"])


class KerasWordTokenizer(WordTokenizer):
    """Keras' `Tokenizer` word indexing, reproduced: word_index from 1 by frequency, 0 is padding.

    Text is lower-cased (Keras' default), the characters of `filters` become `split`, and words are the
    non-empty pieces between `split`s. `num_words` keeps ids below it, as Keras' texts_to_sequences does.
    An unknown word becomes `oov_token`'s id (1) when one is set, and is dropped otherwise (Keras again).
    Decoding joins words with single spaces and skips padding.
    """

    keras_compat = True
    pad_id = 0
    glue_id = None

    def __init__(self, words: Iterable[str], num_words: int | None = None, oov_token: str | None = None,
                 lower: bool = True, filters: str = KERAS_FILTERS, split: str = " "):
        self._words = list(words)
        if any(not isinstance(w, str) or not w for w in self._words):
            raise ValueError("KerasWordTokenizer needs non-empty words")
        # dict(zip(...)) as Keras builds it: an oov_token that also occurs in the text keeps its later index.
        self._index = dict(zip(self._words, range(1, len(self._words) + 1)))
        self.num_words = num_words
        self.oov_token = oov_token
        self.lower = bool(lower)
        self.filters = filters
        self.split = split
        self._table = str.maketrans({c: split for c in filters}) if len(split) == 1 else None
        self.unk_id = self._index[oov_token] if oov_token is not None else None
        if self.unk_id is not None and self.unk_id >= self.vocab_size:
            self.unk_id = None

    @classmethod
    def train(cls, text: str, *, num_words: int | None = None, oov_token: str | None = None,  # type: ignore[override]
              lower: bool = True, filters: str = KERAS_FILTERS, split: str = " ") -> KerasWordTokenizer:
        return cls.train_chunks([text], num_words=num_words, oov_token=oov_token, lower=lower, filters=filters,
                                split=split)

    @classmethod
    def train_chunks(cls, chunks: Iterable[str], *, num_words: int | None = None,  # type: ignore[override]
                     oov_token: str | None = None, lower: bool = True, filters: str = KERAS_FILTERS,
                     split: str = " ") -> KerasWordTokenizer:
        probe = cls([], lower=lower, filters=filters, split=split)
        counts: Counter = Counter()
        for chunk in chunks:
            counts.update(probe.words_of(chunk))
        words = ([] if oov_token is None else [oov_token]) + [w for w, _ in counts.most_common()]
        return cls(words, num_words=num_words, oov_token=oov_token, lower=lower, filters=filters, split=split)

    def words_of(self, text: str) -> list[str]:
        """Keras' text_to_word_sequence: lower-case, filters -> split, split, drop empty pieces."""
        if self.lower:
            text = text.lower()
        if self._table is not None:
            text = text.translate(self._table)
        else:
            for c in self.filters:
                text = text.replace(c, self.split)
        return [w for w in text.split(self.split) if w]

    @property
    def vocab_size(self) -> int:
        full = len(self._index) + 1
        # A num_words beyond the vocabulary would only add ids no text can produce.
        return full if self.num_words is None else min(self.num_words, full)

    @property
    def word_index(self) -> dict[str, int]:
        """Keras' word_index: every training word, including those at or beyond num_words."""
        return dict(self._index)

    def _known(self, word: str) -> int | None:
        i = self._index.get(word)
        return i if i is not None and i < self.vocab_size else None

    def _replace_hint(self) -> str:
        return f"map them to {self.oov_token!r}" if self.unk_id is not None else "drop them, as Keras does"

    # Keras' words carry no state from one line to the next: each chunk is encoded alone.
    encode_chunks = Tokenizer.encode_chunks

    def _encode(self, text: str) -> list[int]:
        out = []
        for word in self.words_of(text):
            i = self._known(word)
            if i is None:
                i = self.unk_id
            if i is not None:
                out.append(i)
        return out

    def unknown_items(self, text: str) -> list[str]:
        return list(dict.fromkeys(w for w in self.words_of(text) if self._known(w) is None))

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self._words[i - 1] for i in self._check_ids(ids) if i != self.pad_id)

    def token_text(self, id: int) -> str:
        (id,) = self._check_ids([id])
        return PAD if id == self.pad_id else self._words[id - 1]

    def decoder(self) -> IncrementalDecoder:
        return _JoinDecoder(self)

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "kind": self.kind, "keras_compat": True,
                "words": list(self._words), "num_words": self.num_words, "oov_token": self.oov_token,
                "lower": self.lower, "filters": self.filters, "split": self.split}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KerasWordTokenizer:
        return cls(data["words"], num_words=data["num_words"], oov_token=data["oov_token"],
                   lower=data["lower"], filters=data["filters"], split=data["split"])


# ------------------------------------------------------------------------------------------------ bpe


_BPE_SEQUENCE = 1 << 14  # characters per sequence handed to the library (cut where no pre-token spans)
_BPE_BATCH = 256  # sequences per encode_batch call: enough for the cores, few enough to bound memory
_BPE_SPLIT_CHARS = 1 << 20  # characters per text split by rnnlab.data.bytelevel


def _hf():
    try:
        import tokenizers
    except ImportError as exc:  # a core dependency, so only a broken install gets here
        raise RnnlabError("--level bpe needs the 'tokenizers' package: pip install tokenizers") from exc
    return tokenizers


class BPETokenizer(Tokenizer):
    """Byte-level BPE (GPT-2 style, HuggingFace `tokenizers`): all 256 bytes are tokens, so nothing is unknown."""

    kind = "bpe"
    unk_id = None
    _items = "bytes"

    def __init__(self, hf_tokenizer: Any, lower: bool = False):
        if not isinstance(lower, bool):
            raise ValueError("lower must be true or false")
        self._hf = hf_tokenizer
        self.lower = lower

    @classmethod
    def train(cls, text: str, vocab_size: int, lower: bool = False) -> BPETokenizer:
        return cls.train_chunks([text], vocab_size, lower)

    @classmethod
    def train_chunks(cls, chunks: Iterable[str], vocab_size: int, lower: bool = False) -> BPETokenizer:
        """`train` on "".join(chunks), read one chunk at a time: pre-tokens never span a safe cut, so the
        counts, and the merges, are the same as from the whole text."""
        return cls.train_recording(chunks, vocab_size, lower)[0]

    @classmethod
    def train_recording(cls, chunks: Iterable[str], vocab_size: int, lower: bool = False,
                        rows_path: str | os.PathLike | None = None) -> tuple[BPETokenizer, PreTokens]:
        """`train_chunks`, and the text's pre-tokens as counted (with `rows_path`, the text recorded there
        as their numbers: `encode_recorded` then gives its ids without splitting it again)."""
        hf = _hf()
        from rnnlab.data.bytelevel import count_pre_tokens, train_byte_level_bpe

        if vocab_size < BYTE_ALPHABET:
            raise ConfigError(f"--vocab-size must be at least {BYTE_ALPHABET} with --level bpe "
                              f"(the byte alphabet alone has {BYTE_ALPHABET} tokens; got {vocab_size})")
        # No prefix space: decode(encode(text)) must give the text back byte for byte. The pre-tokens are
        # counted by rnnlab.data.bytelevel (the library's split, five times faster) and the library's
        # trainer learns from those counts: the tokenizer train_from_iterator would give on the text.
        trainer = hf.trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, special_tokens=[],
                                         initial_alphabet=hf.pre_tokenizers.ByteLevel.alphabet())
        sequences = safe_chunks(iter(chunks), _BPE_SPLIT_CHARS)
        pre_tokens = count_pre_tokens((c.lower() if lower else c for c in sequences), rows_path)
        return cls(train_byte_level_bpe(pre_tokens, trainer), lower=lower), pre_tokens

    def encode_recorded(self, pre_tokens: PreTokens) -> Iterator[np.ndarray]:
        """The ids of the text `train_recording` recorded (the ids encode_chunks gives that text)."""
        return pre_tokens.encode(self._hf)

    @property
    def vocab_size(self) -> int:
        return self._hf.get_vocab_size()

    def _encode(self, text: str) -> list[int]:
        return self._hf.encode(self.normalize(text), add_special_tokens=False).ids

    def encode_chunks(self, chunks: Iterable[str]) -> Iterator[np.ndarray]:
        from rnnlab.data.bytelevel import encode_texts, is_plain_byte_level

        if is_plain_byte_level(self._hf):  # rnnlab's own kind: each distinct pre-token encoded once
            sequences = safe_chunks(iter(chunks), _BPE_SPLIT_CHARS)
            yield from encode_texts(self._hf, (self.normalize(c) for c in sequences))
            return
        # Any other tokenizer.json: the library's encode_batch, which spreads a batch over every core; it
        # is given short sequences, since it keeps per-byte alignments of each (2.8 GB for 8 chunks of 4 MB).
        sequences = safe_chunks(iter(chunks), _BPE_SEQUENCE)
        while batch := [self.normalize(c) for c in islice(sequences, _BPE_BATCH)]:
            ids = [encoding.ids for encoding in self._hf.encode_batch(batch, add_special_tokens=False)]
            yield np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=sum(map(len, ids)))

    def unknown_items(self, text: str) -> list[str]:
        return []

    def decode(self, ids: Iterable[int]) -> str:
        # A cut-off multi-byte character (possible mid-generation) decodes as U+FFFD.
        return self._hf.decode(self._check_ids(ids), skip_special_tokens=False)

    def token_text(self, id: int) -> str:
        return self.decode([id])

    def decoder(self) -> IncrementalDecoder:
        return _ByteDecoder(self)

    def token_bytes(self) -> list[bytes]:
        """Each id's bytes (byte-level BPE spells bytes as printable characters: GPT-2's table, undone)."""
        if getattr(self, "_token_bytes", None) is None:
            from rnnlab.data.bytelevel import byte_alphabet

            byte_of = {c: b for b, c in byte_alphabet().items()}
            spelled = [self._hf.id_to_token(i) for i in range(self.vocab_size)]
            self._token_bytes = [bytes(byte_of[c] for c in token) for token in spelled]
        return self._token_bytes

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "kind": self.kind,
                "hf_tokenizer": json.loads(self._hf.to_str()), **({"lower": True} if self.lower else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        return cls(_hf().Tokenizer.from_str(json.dumps(data["hf_tokenizer"])), lower=data.get("lower", False))


# ------------------------------------------------------------------------------- incremental decoding
#
# Generated text streams: each new id's text must come out as it arrives, and re-decoding the whole row
# per token costs O(n^2) over a long sample. Each decoder keeps just what its tokenizer's `decode` looks
# back at (the previous word and the open quotes; the bytes of a character not yet complete), so that
#     "".join(d.push(i) for i in ids) + d.flush() == tokenizer.decode(ids)
# at O(1) per id.


class IncrementalDecoder(ABC):
    """The text of ids pushed one at a time; `flush` gives what is held back at the end (a partial
    UTF-8 character, as decode would show it)."""

    @abstractmethod
    def push(self, id: int) -> str: ...

    def flush(self) -> str:
        return ""


class _Redecoding(IncrementalDecoder):
    """For a tokenizer without its own decoder: decode a bounded tail of ids (exact when a token's text
    depends on at most the 64 tokens before it)."""

    _TAIL = 64

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer, self.ids = tokenizer, []

    def push(self, id: int) -> str:
        before = self.tokenizer.decode(self.ids)
        self.ids.append(id)
        piece = self.tokenizer.decode(self.ids)[len(before):]
        del self.ids[:-self._TAIL]
        return piece


class _TableDecoder(IncrementalDecoder):
    def __init__(self, table: list[str]):
        self.table = table

    def push(self, id: int) -> str:
        return self.table[id]


class _WordDecoder(IncrementalDecoder):
    """WordTokenizer.decode, one id at a time: the same state (previous token, marker, open marks)."""

    def __init__(self, tokenizer: WordTokenizer):
        self.tokenizer = tokenizer
        self.prev: str | None = None
        self.explicit: str | None = None
        self.open_marks: set[str] = set()

    def push(self, id: int) -> str:
        t = self.tokenizer
        (i,) = t._check_ids([id])
        if i == t.glue_id or i in t._gap_ids:
            self.explicit = ""
            return "" if i == t.glue_id else t._tokens[i]
        token = t._tokens[i]
        piece = (_gap(self.prev, token, self.open_marks) if self.explicit is None else self.explicit) + token
        _toggle(self.open_marks, token)
        self.prev, self.explicit = token, None
        return piece


class _JoinDecoder(IncrementalDecoder):
    """KerasWordTokenizer.decode, one id at a time: words joined by single spaces, padding skipped."""

    def __init__(self, tokenizer: KerasWordTokenizer):
        self.tokenizer, self.started = tokenizer, False

    def push(self, id: int) -> str:
        (i,) = self.tokenizer._check_ids([id])
        if i == self.tokenizer.pad_id:
            return ""
        piece = (" " if self.started else "") + self.tokenizer._words[i - 1]
        self.started = True
        return piece


class _ByteDecoder(IncrementalDecoder):
    """Byte-level BPE, one id at a time: its bytes through an incremental UTF-8 decoder, which holds a
    character back until its last byte arrives (invalid bytes become U+FFFD, as in decode)."""

    def __init__(self, tokenizer: BPETokenizer):
        import codecs

        self.tokenizer, self.table = tokenizer, tokenizer.token_bytes()
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, id: int) -> str:
        (i,) = self.tokenizer._check_ids([id])
        return self.utf8.decode(self.table[i])

    def flush(self) -> str:
        return self.utf8.decode(b"", final=True)


# ------------------------------------------------------------------------------------------ functions

_KINDS: dict[str, type[Tokenizer]] = {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer}


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from `to_dict()` output; anything malformed is a ModelDirError."""
    if not isinstance(data, dict):
        raise ModelDirError("tokenizer data is not a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ModelDirError(f"tokenizer format_version {version!r} is not supported"
                            + (" (written by a newer rnnlab; upgrade rnnlab)" if newer else ""))
    cls = _KINDS.get(data.get("kind"))  # type: ignore[arg-type]
    if cls is None:
        raise ModelDirError(f"unknown tokenizer kind {data.get('kind')!r} (expected one of {', '.join(_KINDS)})")
    try:
        return cls.from_dict(data)  # type: ignore[attr-defined]
    except RnnlabError:
        raise
    except Exception as exc:  # KeyError, TypeError, ValueError, or the tokenizers library's own error
        raise ModelDirError(f"{data['kind']} tokenizer data is malformed ({type(exc).__name__}: {exc})") from exc


def build_tokenizer(text: str, config: DataConfig) -> Tokenizer:
    """Train the tokenizer `config` asks for on `text`, which should be the training split only.

    With --keras-compat the text is lower-cased as Keras' default does (DataConfig's lower=False cannot
    say "not set", so it is read as Keras' default here).
    """
    if not text:
        raise DataError("cannot build a vocabulary from empty training text")
    return build_tokenizer_from_chunks([text], config)


def build_tokenizer_from_chunks(chunks: Iterable[str], config: DataConfig) -> Tokenizer:
    """`build_tokenizer` on the text "".join(chunks), read once, a chunk at a time (see encode_chunks)."""
    if config.level == "char":
        return CharTokenizer.train_chunks(chunks, max_vocab=config.max_vocab, min_count=config.min_count,
                                          lower=config.lower)
    if config.level == "word":
        if config.keras_compat:
            if config.min_count != 1:
                raise ConfigError("--min-count has no Keras equivalent; leave it at 1 with --keras-compat")
            return KerasWordTokenizer.train_chunks(chunks, num_words=config.max_vocab)
        return WordTokenizer.train_chunks(chunks, lower=config.lower, max_vocab=config.max_vocab,
                                          min_count=config.min_count)
    return BPETokenizer.train_chunks(chunks, config.vocab_size, lower=config.lower)


def save_tokenizer(tokenizer: Tokenizer, path: str | Path) -> None:
    """Write the tokenizer as JSON, atomically."""
    _io.write_json(path, tokenizer.to_dict())


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokenizer written by `save_tokenizer`; missing or corrupt files are a ModelDirError."""
    data = _io.read_json(path)
    try:
        return tokenizer_from_dict(data)
    except ModelDirError as exc:
        raise ModelDirError(f"{path}: {exc.message}") from exc
