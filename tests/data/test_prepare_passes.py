"""`prepare` of a char store whose training split is the whole corpus (--val-file) counts its characters
in the pass that describes the corpus: the store is the one the separate vocabulary pass gives."""

import json

import pytest

from rnnlab.config import DataConfig
from rnnlab.data import token_store

BOOK = ("\ufeffThe Project Gutenberg eBook\r\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\r\n"
        "Mowgli ran — “fast”, naïve 😀 wolves.\r\n\r\nSecond paragraph\tend.\r\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK X ***\r\nlicence\r\n")


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "b").mkdir(parents=True)
    (folder / "a.txt").write_bytes(BOOK.encode("utf-8"))
    (folder / "b" / "c.txt").write_text("Second file ½ Ⅻ 日本.\n\n" * 30, encoding="utf-8")
    (folder / "d.txt").write_text("The end: ǅ ß.", encoding="utf-8")
    (tmp_path / "val.txt").write_text("Held out — text ✓ never in the corpus.\n", encoding="utf-8")
    return folder


def _files(path):
    return ((path / token_store.TOKENS).read_bytes(), json.loads((path / token_store.TOKENIZER).read_text()),
            json.loads((path / token_store.META).read_text()))


@pytest.mark.parametrize("data", [DataConfig(level="char"), DataConfig(level="char", max_vocab=12),
                                  DataConfig(level="char", min_count=3)])
def test_one_reading_fewer_gives_the_same_store(corpus, tmp_path, monkeypatch, data):
    val = tmp_path / "val.txt"
    calls = []
    real = token_store._described_pieces
    monkeypatch.setattr(token_store, "_described_pieces", lambda source: calls.append(source) or real(source))
    token_store.prepare(corpus, tmp_path / "fused", data, val_file=val)
    assert len(calls) == 1  # it took the one-pass way
    monkeypatch.setattr(token_store, "FUSED_VOCABULARY", False)
    token_store.prepare(corpus, tmp_path / "separate", data, val_file=val)
    assert len(calls) == 1
    assert _files(tmp_path / "fused") == _files(tmp_path / "separate")


def test_without_a_valid_file_or_with_lower_casing_the_vocabulary_has_its_own_pass(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(token_store, "_described_pieces", None)  # would fail if called
    token_store.prepare(corpus, tmp_path / "split", DataConfig(level="char"))
    token_store.prepare(corpus, tmp_path / "lower", DataConfig(level="char", lower=True),
                        val_file=tmp_path / "val.txt")
