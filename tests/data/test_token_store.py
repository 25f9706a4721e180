"""The token store: the same ids and splits as reading the text whole, a sidecar that says what it holds,
refusal of whatever does not fit, and training from it as from the corpus."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import rnnlab
from rnnlab.config import DataConfig
from rnnlab.data import token_store
from rnnlab.data.splits import load_corpus_splits
from rnnlab.data.tokenizers import build_tokenizer
from rnnlab.errors import DataError

BOOK = ("\ufeffThe Project Gutenberg eBook of Tests\r\n*** START OF THIS PROJECT GUTENBERG EBOOK ***\r\n"
        "Mowgli said \"the wolves\r\nare here\" and ran.   Bagheera   purred;\r\n\r\n  Baloo slept. ΣΑΣ σας.\r\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK ***\r\nlicence text\r\n")


@pytest.fixture
def folder_corpus(tmp_path):
    """Three files: Gutenberg boilerplate with a BOM and CRLF, plain text ending in whitespace, a short one."""
    folder = tmp_path / "corpus"
    (folder / "b").mkdir(parents=True)
    (folder / "a.txt").write_bytes(BOOK.encode("utf-8"))
    (folder / "b" / "c.txt").write_text("Second file, with \"quotes\nacross\" lines and  gaps.\n\n" * 40,
                                        encoding="utf-8")
    (folder / "d.txt").write_text("The end: wolves — and men / beasts.", encoding="utf-8")
    return folder


LEVELS = [DataConfig(level="char"), DataConfig(level="char", lower=True), DataConfig(level="word"),
          DataConfig(level="word", lower=True, min_count=2), DataConfig(level="word", keras_compat=True),
          DataConfig(level="bpe", vocab_size=300)]


@pytest.mark.parametrize("data", LEVELS, ids=lambda d: f"{d.level}{'-lower' if d.lower else ''}"
                         f"{'-keras' if d.keras_compat else ''}{'-min2' if d.min_count > 1 else ''}")
@pytest.mark.parametrize("chunk", [7, 64, 1 << 22])
def test_the_store_holds_the_ids_and_splits_of_the_text_read_whole(folder_corpus, tmp_path, monkeypatch,
                                                                   data, chunk):
    monkeypatch.setattr(token_store, "CHUNK_CHARS", chunk)  # tiny chunks cut the text everywhere it may be
    store = token_store.prepare(folder_corpus, tmp_path / "store", data)
    splits = load_corpus_splits(folder_corpus, data)
    tokenizer = build_tokenizer(splits.train, data)
    assert store.tokenizer == tokenizer
    for name in token_store.SPLITS:
        text = getattr(splits, name)
        expected = tokenizer.start_ids() + tokenizer.encode(text) if text else []
        assert store.ids(name).tolist() == expected, name
        assert store.chars(name) == len(text)
        assert store.text_tokens(name) == len(tokenizer.encode(text))
    assert store.meta["train_sha256"] == hashlib.sha256(splits.train.encode("utf-8")).hexdigest()


def test_val_and_test_files_are_their_own_splits(folder_corpus, tmp_path):
    valid, test = tmp_path / "valid.txt", tmp_path / "test.txt"
    valid.write_text("wolves here\r\n", encoding="utf-8")
    test.write_text("and men", encoding="utf-8")
    store = token_store.prepare(folder_corpus, tmp_path / "store", val_file=valid, test_file=test)
    splits = load_corpus_splits(folder_corpus, DataConfig(), val_file=valid, test_file=test)
    tok = store.tokenizer
    for name in token_store.SPLITS:
        assert store.ids(name).tolist() == tok.start_ids() + tok.encode(getattr(splits, name))
    assert [s["role"] for s in store.meta["sources"]] == ["corpus"] * 3 + ["valid", "test"]


def test_the_sidecar_names_its_sources_documents_dtype_and_tokenizer(folder_corpus, tmp_path):
    store = token_store.prepare(folder_corpus, tmp_path / "store", DataConfig(level="char"))
    meta = json.loads((tmp_path / "store" / token_store.META).read_text(encoding="utf-8"))
    files = [folder_corpus / "a.txt", folder_corpus / "b" / "c.txt", folder_corpus / "d.txt"]
    assert [s["path"] for s in meta["sources"]] == [str(f) for f in files]
    assert [s["bytes"] for s in meta["sources"]] == [f.stat().st_size for f in files]
    assert [s["sha256"] for s in meta["sources"]] == [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    text = rnnlab.data.corpus.read_corpus(folder_corpus)
    starts = [d["char"] for d in meta["documents"]]
    assert starts[0] == 0 and all(text[s - 1] == "\n" for s in starts[1:])
    assert text[starts[2]:].startswith("The end")
    assert meta["dtype"] == "|u1" and meta["tokens"] * 1 == (tmp_path / "store" / token_store.TOKENS).stat().st_size
    assert meta["tokenizer_sha256"] == token_store.tokenizer_sha256(store.tokenizer)
    assert DataConfig.from_dict(meta["data"]) == DataConfig(level="char")
    assert isinstance(store.ids("train"), np.memmap) and not store.ids("train").flags.writeable


def test_the_dtype_is_the_smallest_that_holds_the_vocabulary():
    assert [token_store.dtype_for(n).itemsize for n in (2, 256, 257, 65536, 65537, 2**32)] == [1, 1, 2, 2, 4, 4]
    with pytest.raises(rnnlab.errors.ConfigError):
        token_store.dtype_for(2**32 + 1)


def test_a_damaged_or_foreign_store_is_refused(folder_corpus, tmp_path):
    path = tmp_path / "store"
    token_store.prepare(folder_corpus, path)
    other = token_store.prepare(folder_corpus, tmp_path / "other", DataConfig(level="char", lower=True))
    (path / token_store.TOKENIZER).write_bytes((other.path / token_store.TOKENIZER).read_bytes())
    with pytest.raises(DataError, match="is not the tokenizer that wrote"):
        token_store.open_store(path)
    token_store.prepare(folder_corpus, path, overwrite=True)
    with open(path / token_store.TOKENS, "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(DataError, match="holds 100 bytes"):
        token_store.open_store(path)
    (path / token_store.META).unlink()
    with pytest.raises(DataError, match="is not a token store"):
        token_store.open_store(path)


def test_prepare_never_writes_into_a_folder_that_is_not_its_own(folder_corpus, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(DataError, match="not a token store; refusing"):
        token_store.prepare(folder_corpus, mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    token_store.prepare(folder_corpus, tmp_path / "store")
    with pytest.raises(DataError, match="pass --overwrite"):
        token_store.prepare(folder_corpus, tmp_path / "store")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        token_store.prepare(bad, tmp_path / "new")
    assert not (tmp_path / "new").exists()  # a failed build leaves no trace


TRAIN = ["--hidden", "24", "--layers", "1", "--embedding", "8", "--seq-len", "16", "--batch-size", "4",
         "--max-steps", "6", "--eval-every", "3", "--sample-every", "0", "--no-progress", "--seed", "5"]


def _rnnlab(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)], capture_output=True, text=True,
                            timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_training_on_a_prepared_store_is_training_on_the_corpus(small_corpus, tmp_path):
    """`rnnlab train CORPUS` builds MODEL/tokens and trains from it; `prepare` + `train TOKENS_DIR` is the
    same run, bit for bit; a second run on the same corpus reuses the store it finds."""
    _rnnlab("train", small_corpus, "-o", tmp_path / "direct", *TRAIN)
    _rnnlab("prepare", small_corpus, "-o", tmp_path / "tokens")
    _rnnlab("train", tmp_path / "tokens", "-o", tmp_path / "stored", *TRAIN)
    direct, stored = rnnlab.load(tmp_path / "direct"), rnnlab.load(tmp_path / "stored")
    assert direct.tokenizer == stored.tokenizer
    for name, tensor in direct.model.state_dict().items():
        assert torch.equal(tensor, stored.model.state_dict()[name]), name
    built = tmp_path / "direct" / "tokens"
    assert token_store.open_store(built).ids("train").tolist() == \
        token_store.open_store(tmp_path / "tokens").ids("train").tolist()
    stamp = (built / token_store.TOKENS).stat().st_mtime_ns
    _rnnlab("train", small_corpus, "-o", tmp_path / "direct", "--overwrite", *TRAIN)
    assert (built / token_store.TOKENS).stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_resume_from_a_store_continues_and_another_corpus_is_refused(small_corpus, tmp_path):
    _rnnlab("prepare", small_corpus, "-o", tmp_path / "tokens")
    _rnnlab("train", tmp_path / "tokens", "-o", tmp_path / "straight", *TRAIN)
    half = [*TRAIN]
    half[half.index("--max-steps") + 1] = "3"
    _rnnlab("train", tmp_path / "tokens", "-o", tmp_path / "resumed", *half)
    _rnnlab("train", tmp_path / "tokens", "-o", tmp_path / "resumed", "--resume", "--max-steps", "6")
    straight, resumed = rnnlab.load(tmp_path / "straight"), rnnlab.load(tmp_path / "resumed")
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    other = tmp_path / "other.txt"
    other.write_text(small_corpus.read_text(encoding="utf-8")[::-1], encoding="utf-8")
    _rnnlab("prepare", other, "-o", tmp_path / "other-tokens", "--tokenizer", tmp_path / "resumed" / "tokenizer.json")
    result = _rnnlab("train", tmp_path / "other-tokens", "-o", tmp_path / "resumed", "--resume", "--max-steps", "9",
                     check=False)
    assert result.returncode == 2 and "training text differs" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_store_fixes_its_data_settings_and_objective(small_corpus, tmp_path):
    _rnnlab("prepare", small_corpus, "-o", tmp_path / "tokens", "--level", "word")
    for extra, message in ((["--level", "char"], "cannot change --level"),
                           (["--objective", "prefixes"], "reads the lines of a text"),
                           (["--val-file", str(small_corpus)], "belong to `rnnlab prepare`")):
        result = _rnnlab("train", tmp_path / "tokens", "-o", tmp_path / "m", *TRAIN, *extra, check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()


def test_prepare_with_a_models_tokenizer_encodes_with_it(small_corpus, tmp_path):
    _rnnlab("train", small_corpus, "-o", tmp_path / "model", *TRAIN, "--level", "word")
    result = _rnnlab("prepare", small_corpus, "-o", tmp_path / "tokens", "--tokenizer",
                     tmp_path / "model" / "tokenizer.json")
    assert json.loads(result.stdout)["splits"]["train"]["tokens"] > 0
    store = token_store.open_store(tmp_path / "tokens")
    assert store.tokenizer == rnnlab.load(tmp_path / "model").tokenizer
    assert store.data_config.level == "word"
    # Fine-tuning that model on the store reads it with the model's own tokenizer.
    tuned = rnnlab.train(tmp_path / "tokens", tmp_path / "tuned", init_from=tmp_path / "model", max_steps=2,
                         eval_every=2, sample_every=0, progress=False, batch_size=4, seq_len=16)
    assert tuned.tokenizer == store.tokenizer


def test_an_interrupted_prepare_leaves_a_store_that_says_so_and_is_rebuilt(folder_corpus, tmp_path, monkeypatch):
    path = tmp_path / "store"

    def full_disk(*args, **kwargs):
        raise rnnlab.errors.RnnlabError(f"could not write {path / token_store.TOKENS}: No space left on device")

    token_store.prepare(folder_corpus, path)
    with monkeypatch.context() as patched:
        patched.setattr(token_store, "read_ahead", full_disk)  # (the ids' pass reads ahead)
        with pytest.raises(rnnlab.errors.RnnlabError, match="No space left"):
            token_store.prepare(folder_corpus, path, DataConfig(level="word"), overwrite=True)
    with pytest.raises(DataError, match="incomplete token store"):
        token_store.open_store(path)
    result = _rnnlab("train", path, "-o", tmp_path / "m", *TRAIN, check=False)
    assert result.returncode == 2 and "incomplete token store" in result.stderr
    store = token_store.prepare(folder_corpus, path, DataConfig(level="word"))  # no --overwrite needed
    assert store.data_config.level == "word"


@pytest.mark.parametrize("damage", ["range-type", "range-order", "dtype", "start", "no-tokens", "missing-key",
                                    "id-beyond-vocabulary"])
def test_a_tampered_sidecar_or_token_file_is_one_line_not_a_traceback(small_corpus, tmp_path, damage):
    store = tmp_path / "tokens"
    _rnnlab("prepare", small_corpus, "-o", store)
    meta = json.loads((store / token_store.META).read_text(encoding="utf-8"))
    if damage == "range-type":
        meta["splits"]["train"]["tokens"] = ["x", 5]
    elif damage == "range-order":
        meta["splits"]["valid"]["tokens"] = [50, 10]
    elif damage == "dtype":
        meta["dtype"] = "<f4"
    elif damage == "start":
        meta["start_tokens"] = "x"
    elif damage == "no-tokens":
        meta["tokens"] = 0
        (store / token_store.TOKENS).write_bytes(b"")
    elif damage == "missing-key":
        del meta["splits"]["test"]
    else:
        data = bytearray((store / token_store.TOKENS).read_bytes())
        data[100] = 250
        (store / token_store.TOKENS).write_bytes(bytes(data))
    (store / token_store.META).write_text(json.dumps(meta), encoding="utf-8")
    result = _rnnlab("train", store, "-o", tmp_path / "m", *TRAIN, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and str(store) in result.stderr
