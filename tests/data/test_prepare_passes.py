"""`prepare` reads less than three times where it can, and the store is the one the three readings give:
a char store whose training split is the whole corpus (--val-file) counts its characters in the pass that
describes the corpus; a new BPE store's training ids are looked up from the pre-tokens its training
recorded."""

import json
from pathlib import Path

import pytest

from rnnlab.config import DataConfig
from rnnlab.data import bytelevel, token_store
from rnnlab.data.tokenizers import BPETokenizer
from rnnlab.errors import RnnlabError

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


BPE = [DataConfig(level="bpe", vocab_size=300), DataConfig(level="bpe", vocab_size=300, lower=True)]


@pytest.mark.parametrize("data", BPE)
@pytest.mark.parametrize("val", [True, False], ids=["val-file", "split"])
def test_a_bpe_store_from_the_recorded_pre_tokens_is_the_one_a_second_reading_gives(corpus, tmp_path, monkeypatch,
                                                                                     data, val):
    """The training split is split into pre-tokens once: training counts them and records them, and its
    ids are looked up from the record. The store is the one that encoding a second reading gives."""
    val_file = tmp_path / "val.txt" if val else None
    token_store.prepare(corpus, tmp_path / "recorded", data, val_file=val_file)
    # The record was a scratch file of the build: only the store's own files are left.
    assert sorted(p.name for p in (tmp_path / "recorded").iterdir()) == sorted(
        [token_store.META, token_store.TOKENS, token_store.TOKENIZER])
    monkeypatch.setattr(token_store, "RECORDED_PRE_TOKENS", False)
    monkeypatch.setattr(token_store, "FUSED_VOCABULARY", False)
    token_store.prepare(corpus, tmp_path / "read-twice", data, val_file=val_file)
    assert _files(tmp_path / "recorded") == _files(tmp_path / "read-twice")


def test_recorded_pre_tokens_from_worker_processes_give_the_same_store(corpus, tmp_path, monkeypatch):
    data = DataConfig(level="bpe", vocab_size=300)
    token_store.prepare(corpus, tmp_path / "alone", data)
    with monkeypatch.context() as patched:  # split in many texts, all but the first in worker processes
        patched.setattr(bytelevel, "PARALLEL_AFTER", 200)
        patched.setattr(bytelevel, "usable_cpus", lambda: 2)
        patched.setattr("rnnlab.data.tokenizers._BPE_SPLIT_CHARS", 150)
        token_store.prepare(corpus, tmp_path / "workers", data)
    assert _files(tmp_path / "alone") == _files(tmp_path / "workers")


def test_a_failed_bpe_build_removes_its_record(corpus, tmp_path, monkeypatch):
    def full_disk(self, pre_tokens):
        assert Path(pre_tokens.rows_path).stat().st_size > 0  # (the record was written)
        raise RnnlabError("could not write tokens.bin: No space left on device")

    old = tmp_path / "old"
    token_store.prepare(corpus, old, DataConfig(level="char"))
    before = _files(old)
    monkeypatch.setattr(BPETokenizer, "encode_recorded", full_disk)
    with pytest.raises(RnnlabError, match="No space left"):
        token_store.prepare(corpus, tmp_path / "new", DataConfig(level="bpe", vocab_size=300))
    assert not (tmp_path / "new").exists()  # a directory it made, gone with the scratch file in it
    with pytest.raises(RnnlabError, match="No space left"):
        token_store.prepare(corpus, old, DataConfig(level="bpe", vocab_size=300), overwrite=True)
    # The store it was to replace is marked incomplete, and the scratch file is gone.
    assert sorted(p.name for p in old.iterdir()) == sorted([token_store.META, token_store.TOKENS,
                                                            token_store.TOKENIZER])
    assert _files(old)[0] == before[0]
