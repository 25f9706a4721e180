"""rnnlab.data.bytelevel: the library's byte-level split, ids and merges, computed faster."""

import json

import numpy as np
import pytest
import tokenizers as hf
from conftest import SHARED_DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.config import DataConfig
from rnnlab.data import bytelevel, token_store
from rnnlab.data.corpus import safe_chunks
from rnnlab.data.tokenizers import BPETokenizer

# Characters where the classes of GPT-2's pattern are easy to get wrong: contractions, every kind of
# space (NBSP, ideographic, line separator, NEL, the ASCII separators Python calls spaces but Unicode does
# not), digits of other scripts, letter-like numbers, combining marks, emoji, CJK, underscores.
TRICKY = list("aZé'sStTdDmlLrRvVe 1٣²Ⅻ½_!?.,-\"\n\t\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\u200b\u0301\u00ad日本😀ß\x00ǅ")


def _library_split(text: str) -> list[str]:
    pre = hf.pre_tokenizers.ByteLevel(add_prefix_space=False)
    return [piece for piece, _ in pre.pre_tokenize_str(text)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(TRICKY), max_size=60) | st.text(max_size=40))
def test_the_split_is_the_librarys(text):
    splitter = bytelevel.ByteLevelSplitter()
    pieces = splitter.split(text)
    assert "".join(pieces) == text
    assert [bytelevel.byte_level(p) for p in pieces] == _library_split(text)


def _reference_bpe(text: str, vocab_size: int) -> hf.Tokenizer:
    """What rnnlab trained before: the library's own trainer, fed the text."""
    tok = hf.Tokenizer(hf.models.BPE())
    tok.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = hf.decoders.ByteLevel()
    trainer = hf.trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, special_tokens=[],
                                     initial_alphabet=hf.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(safe_chunks(iter([text]), 1 << 14), trainer=trainer)
    return tok


@pytest.fixture(scope="module")
def text():
    book = (SHARED_DATA / "jungle-book.txt").read_text(encoding="utf-8")[:300_000]
    return book + " naïve café — 1,234.5 don't  \t\n\n日本語 😀 x\u3000y ½ Ⅻ\n"


@pytest.mark.parametrize("vocab_size", [300, 1000])
def test_training_from_counts_gives_the_librarys_tokenizer(text, vocab_size):
    ours = BPETokenizer.train_chunks(safe_chunks(iter([text]), 50_000), vocab_size)
    assert json.loads(ours._hf.to_str()) == json.loads(_reference_bpe(text, vocab_size).to_str())


def test_encoding_gives_the_librarys_ids(text):
    tok = BPETokenizer.train(text, 1000)
    ids = np.concatenate(list(tok.encode_chunks(safe_chunks(iter([text]), 20_000))))
    assert ids.tolist() == tok._hf.encode(text, add_special_tokens=False).ids
    # A pre-token first seen in a later text, and the cache forgotten and rebuilt, change nothing.
    encoder = bytelevel.ByteLevelEncoder(tok._hf)
    for part in ("the the", " unheard-of xylophones", "", "\n\n the"):
        assert encoder.encode(part).tolist() == tok._hf.encode(part, add_special_tokens=False).ids
    encoder._index.clear()
    encoder._reset()
    assert encoder.encode("the the").tolist() == tok._hf.encode("the the", add_special_tokens=False).ids


def test_another_kind_of_tokenizer_json_goes_the_librarys_way(text):
    tok = BPETokenizer.train(text, 300)
    assert bytelevel.is_plain_byte_level(tok._hf)
    other = hf.Tokenizer.from_str(tok._hf.to_str())
    other.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=True)
    assert not bytelevel.is_plain_byte_level(other)
    other = BPETokenizer(other)
    ids = np.concatenate(list(other.encode_chunks(["Mowgli ran", " home"])))
    assert ids.tolist() == other._hf.encode("Mowgli ran home", add_special_tokens=False).ids


def test_a_bpe_store_holds_the_ids_of_encode(tmp_path, text):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8")
    store = token_store.prepare(corpus, tmp_path / "store", DataConfig(level="bpe", vocab_size=500))
    splits = {name: store.ids(name)[len(store.tokenizer.start_ids()):].tolist() for name in token_store.SPLITS}
    cleaned = "".join(token_store._split_chunks(
        token_store.corpus_sources(corpus, store.data_config), token_store._split_sizes(
            {"corpus": sum(store.chars(n) for n in token_store.SPLITS)}, store.data_config), store.data_config,
        "train"))
    assert splits["train"] == store.tokenizer._hf.encode(cleaned, add_special_tokens=False).ids
    assert json.loads(store.tokenizer._hf.to_str()) == json.loads(_reference_bpe(cleaned, 500).to_str())


def test_worker_processes_give_the_same_counts_and_ids(text, monkeypatch):
    """A long text goes to worker processes after its first PARALLEL_AFTER characters: nothing changes."""
    alone = BPETokenizer.train_chunks(safe_chunks(iter([text]), 20_000), 500)
    monkeypatch.setattr(bytelevel, "PARALLEL_AFTER", 50_000)
    monkeypatch.setattr(bytelevel, "usable_cpus", lambda: 2)
    monkeypatch.setattr("rnnlab.data.tokenizers._BPE_SPLIT_CHARS", 20_000)
    shared = BPETokenizer.train_chunks(safe_chunks(iter([text]), 20_000), 500)
    assert shared._hf.to_str() == alone._hf.to_str()
    ids = np.concatenate(list(shared.encode_chunks(safe_chunks(iter([text]), 30_000))))
    assert ids.tolist() == alone._hf.encode(text, add_special_tokens=False).ids
