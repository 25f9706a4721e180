"""Reading a corpus as a stream gives exactly what reading it whole gives: the text, the Gutenberg cut,
the errors (byte offsets included), and chunks that tokenize as the whole text does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab.config import DataConfig
from rnnlab.data import corpus, token_store
from rnnlab.data.corpus import PieceReader, _GutenbergScan, safe_chunks, strip_gutenberg
from rnnlab.data.tokenizers import build_tokenizer
from rnnlab.errors import DataError

ATOMS = ["a", "é", "Σ", " ", "  ", "\n", "\r\n", "\r", "\ufeff", "*** START OF x", "*** END OF y", "*** START",
         "END OF", "word", "\"", "'s"]
texts = st.lists(st.sampled_from(ATOMS), max_size=30).map("".join)


def _in_pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


@given(texts, st.integers(1, 9))
def test_the_gutenberg_scan_cuts_where_strip_gutenberg_cuts(text, size):
    scan = _GutenbergScan()
    for piece in _in_pieces(text, size):
        scan.feed(piece)
    begin, end = scan.bounds()
    assert text[begin:end] == strip_gutenberg(text)


@given(texts, st.integers(1, 9), st.integers(1, 40))
def test_safe_chunks_give_the_text_back_cut_only_before_whitespace_after_text(text, size, chunk):
    chunks = list(safe_chunks(iter(_in_pieces(text, size)), chunk))
    assert "".join(chunks) == text
    for before, after in zip(chunks, chunks[1:]):
        assert not before[-1].isspace() and after[0].isspace()
    reader = PieceReader(iter(_in_pieces(text, size)))
    head = "".join(reader.take(chunk))
    assert head == text[:chunk] and head + "".join(reader.take(len(text))) == text


def _read(path, streamed: bool, keep_header: bool, encoding: str, errors: str):
    try:
        if streamed:
            return "ok", "".join(corpus.corpus_pieces(path, keep_header, encoding, errors))
        return "ok", corpus.read_corpus(path, keep_header, encoding, errors)
    except DataError as exc:
        return "error", exc.message


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts, st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"ab\x00"]), st.booleans(),
       st.sampled_from(["utf-8", "latin-1", "cp1252"]), st.sampled_from(["strict", "replace", "ignore"]),
       st.booleans(), st.integers(1, 7))
def test_a_streamed_file_reads_as_the_whole_file_errors_included(tmp_path, monkeypatch, text, prefix, bad_bytes,
                                                                  encoding, errors, keep_header, block):
    data = prefix + text.encode("utf-8") + (b"\xff\xc3 tail" if bad_bytes else b"")
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    monkeypatch.setattr(corpus, "STREAM_BYTES", 1 << 40)
    whole = _read(path, False, keep_header, encoding, errors)
    monkeypatch.setattr(corpus, "STREAM_BYTES", -1)  # every file is streamed, in blocks of a few bytes
    monkeypatch.setattr(corpus, "BLOCK_BYTES", block)
    assert _read(path, True, keep_header, encoding, errors) == whole


def test_a_large_single_file_is_streamed_into_the_same_store(tmp_path, monkeypatch):
    """A file above STREAM_BYTES is never held whole, and its store holds the ids of reading it whole."""
    text = ("Header\r\n*** START OF THE BOOK ***\r\n" + "Mowgli ran  with \"the wolves\r\nat night\".\r\n" * 300
            + "*** END OF THE BOOK ***\r\nlicence")
    path = tmp_path / "big.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    for data in (DataConfig(level="char"), DataConfig(level="word"), DataConfig(level="bpe", vocab_size=280)):
        monkeypatch.setattr(corpus, "STREAM_BYTES", 1 << 40)
        whole = token_store.prepare(path, tmp_path / f"whole-{data.level}", data)
        monkeypatch.setattr(corpus, "STREAM_BYTES", 100)
        monkeypatch.setattr(corpus, "BLOCK_BYTES", 97)
        monkeypatch.setattr(token_store, "CHUNK_CHARS", 50)
        streamed = token_store.prepare(path, tmp_path / f"streamed-{data.level}", data)
        assert streamed.tokenizer == whole.tokenizer == build_tokenizer(
            corpus.split_text(corpus.read_corpus(path), data.split)[0], data)
        for name in token_store.SPLITS:
            assert streamed.ids(name).tolist() == whole.ids(name).tolist()
        assert streamed.meta["sources"] == whole.meta["sources"]


def test_a_streamed_file_with_an_empty_gutenberg_body_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "empty.txt"
    path.write_text("Header text\n*** START OF IT ***\n\n  \n*** END OF IT ***\nlicence text\n", encoding="utf-8")
    monkeypatch.setattr(corpus, "STREAM_BYTES", -1)
    with pytest.raises(DataError, match="no text between its Project Gutenberg START and END"):
        list(corpus.corpus_pieces(path))


def test_prepare_never_joins_a_streamed_file_into_one_text(tmp_path, monkeypatch):
    """Bounded memory is the point: a file above STREAM_BYTES is only ever read piece by piece."""
    path = tmp_path / "big.txt"
    path.write_text("Mowgli ran with the wolves.\n" * 400, encoding="utf-8")
    monkeypatch.setattr(corpus, "STREAM_BYTES", 100)
    monkeypatch.setattr(corpus, "BLOCK_BYTES", 256)

    def joined(doc):
        raise AssertionError(f"{doc.path} was joined into one string")

    monkeypatch.setattr(corpus.Document, "text", property(joined))
    store = token_store.prepare(path, tmp_path / "store")
    assert store.chars("train") + store.chars("valid") + store.chars("test") == 400 * 28
