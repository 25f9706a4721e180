"""Fine-tuning with --init-from: new characters extend the vocabulary, the loss on the new text falls.

The base models are tiny ones trained on 20,000 characters of the Jungle Book (once per session); the
"other text" is Tiny Shakespeare, which has characters the Jungle Book slice lacks (' and V).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import single_thread as _single_thread

import rnnlab
from rnnlab import api, cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FINETUNE = dict(max_steps=25, epochs=None, seq_len=64, batch_size=16, lr=5e-3, warmup_steps=0, sample_every=0,
                seed=0)


@pytest.fixture(autouse=True)
def _one_thread():
    with _single_thread():
        yield


@pytest.fixture(scope="session")
def shakespeare(tmp_path_factory) -> tuple[Path, Path]:
    """(a small Shakespeare text to fine-tune on, a held-out Shakespeare text to score)."""
    text = (DATA / "tiny-shakespeare.txt").read_text(encoding="utf-8")
    folder = tmp_path_factory.mktemp("shakespeare")
    train, held_out = folder / "train.txt", folder / "held-out.txt"
    train.write_text(text[:12_000], encoding="utf-8")
    held_out.write_text(text[500_000:504_000], encoding="utf-8")
    return train, held_out


def test_new_characters_extend_the_vocabulary_and_keep_the_old_rows(char_model_dir):
    base = rnnlab.load(char_model_dir)
    before = {name: t.clone() for name, t in base.model.state_dict().items()}
    old_chars = base.tokenizer.chars
    n_old = base.tokenizer.vocab_size
    lines: list[str] = []
    tokenizer = base.tokenizer.extend(base.tokenizer.unknown_items("Zé, V'ä Zé"))
    extended = api._adapt_for_finetuning(base, tokenizer, lines.append)
    new = sorted({"Z", "é", "V", "'", "ä"} - set(old_chars))
    assert len(new) >= 3 and lines == [f"extending the vocabulary with {len(new)} new character(s)"]
    assert tokenizer.vocab_size == extended.model.config.vocab_size == n_old + len(new)
    assert tokenizer.chars == old_chars + tuple(new)  # old ids unchanged, new ones appended
    after = extended.model.state_dict()
    assert after.keys() == before.keys()
    resized = []
    for name, old in before.items():
        if after[name].shape == old.shape:
            assert torch.equal(after[name], old), name
        else:
            resized.append(name)
            assert after[name].shape[0] == n_old + len(new) and after[name].shape[1:] == old.shape[1:]
            assert torch.equal(after[name][:n_old], old), name  # bitwise the same rows
    assert sorted(resized) == ["decoder.bias", "decoder.weight", "embedding.weight"]
    # The base model itself is left as it was.
    assert all(torch.equal(t, before[n]) for n, t in base.model.state_dict().items())
    # The old characters' logits are exactly the base model's; the new ones start below every old one.
    ids = base.tokenizer.encode("The wolf")
    extended.model.eval()  # no dropout
    with torch.inference_mode():
        old_logits, _ = base.model(torch.tensor([ids]))
        new_logits, _ = extended.model(torch.tensor([ids]))
    assert torch.equal(new_logits[..., :n_old], old_logits)
    assert bool((extended.model.decoder.bias[n_old:] <= extended.model.decoder.bias[:n_old].min()).all())


def test_no_new_characters_leaves_the_model_alone(char_model_dir):
    base = rnnlab.load(char_model_dir)
    tokenizer = base.tokenizer.extend(base.tokenizer.unknown_items("The wolf"))
    assert tokenizer == base.tokenizer
    assert api._adapt_for_finetuning(base, tokenizer, lambda line: None) is base


def test_finetuning_through_the_api_lowers_the_loss_on_the_new_text(char_model_dir, shakespeare, tmp_path):
    train, held_out = shakespeare
    base = rnnlab.load(char_model_dir)
    before = base.evaluate(held_out)
    tuned = rnnlab.train(train, tmp_path / "tuned", init_from=char_model_dir, progress=False, **FINETUNE)
    after = tuned.evaluate(held_out)
    assert after["loss"] < before["loss"] - 0.05
    # It started from the base model's weights: a few steps move them a little (a fresh start is as far
    # from them as two random initialisations, a relative distance above 1).
    old, new = base.model.state_dict(), tuned.model.state_dict()
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.weight_hh_l1"):
        assert float((new[name] - old[name]).norm() / old[name].norm()) < 0.6, name
    # The Shakespeare characters the base never saw are now in the vocabulary, old ids unchanged.
    assert before["unknown"] > 0 and after["unknown"] == 0
    assert tuned.tokenizer.chars[:len(base.tokenizer.chars)] == base.tokenizer.chars
    assert {"'", "V"} <= set(tuned.tokenizer.chars)
    # The architecture comes from the base model.
    assert tuned.model.config.replace(vocab_size=0) == base.model.config.replace(vocab_size=0)


def test_finetuning_from_the_command_line(char_model_dir, shakespeare, tmp_path, capsys):
    train, held_out = shakespeare
    assert cli.main(["evaluate", str(char_model_dir), str(held_out), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    out = tmp_path / "tuned"
    args = ["train", str(train), "-o", str(out), "--init-from", str(char_model_dir), "--max-steps", "25",
            "--seq-len", "64", "--batch-size", "16", "--lr", "5e-3", "--warmup", "0", "--sample-every", "0",
            "--no-progress"]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "extending the vocabulary with" in err
    assert cli.main(["evaluate", str(out), str(held_out), "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["loss"] < before["loss"] - 0.05


def test_word_models_map_unknown_words_to_unk(word_model_dir, shakespeare, tmp_path):
    train, held_out = shakespeare
    base = rnnlab.load(word_model_dir)
    assert base.tokenizer.unknown_items(train.read_text(encoding="utf-8"))  # Shakespeare has new words
    tuned = rnnlab.train(train, tmp_path / "tuned", init_from=word_model_dir, progress=False,
                         **{**FINETUNE, "max_steps": 5})
    assert tuned.tokenizer == base.tokenizer  # the vocabulary is the base model's
    assert tuned.model.config == base.model.config
    metrics = tuned.evaluate(held_out)
    assert metrics["unknown"] > 0 and math.isfinite(metrics["loss"])


def test_init_from_a_missing_directory_is_a_one_line_error(shakespeare, tmp_path, capsys):
    train, _ = shakespeare
    out = tmp_path / "out"
    missing = tmp_path / "no-such-model"
    args = ["train", str(train), "-o", str(out), "--init-from", str(missing), "--max-steps", "1"]
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"rnnlab: error: model directory {missing} does not exist\n"
    assert not out.exists()


def test_a_mingru_model_fine_tunes_like_an_lstm(shakespeare, tmp_path, capsys):
    """--init-from with a min cell: new characters get rows, the blocks start from the base weights."""
    from rnnlab.data.corpus import read_corpus

    train, held_out = shakespeare
    jungle = tmp_path / "jungle.txt"
    jungle.write_text(read_corpus(DATA / "jungle-book.txt")[:20_000], encoding="utf-8")
    base_dir, tuned_dir = tmp_path / "base", tmp_path / "tuned"
    rnnlab.train(jungle, base_dir, cell="mingru", hidden_size=32, embedding_size=16, layers=2, seq_len=64,
                 batch_size=16, max_steps=40, epochs=None, lr=1e-2, warmup_steps=5, sample_every=0, seed=0,
                 progress=False)
    base = rnnlab.load(base_dir)
    before = base.evaluate(held_out)
    assert cli.main(["train", str(train), "-o", str(tuned_dir), "--init-from", str(base_dir), "--max-steps",
                     "25", "--seq-len", "64", "--batch-size", "16", "--lr", "5e-3", "--warmup", "0",
                     "--sample-every", "0", "--no-progress"]) == 0
    assert "extending the vocabulary with" in capsys.readouterr().err
    tuned = rnnlab.load(tuned_dir)
    assert tuned.model.config.cell == "mingru"
    after = tuned.evaluate(held_out)
    assert after["loss"] < before["loss"] - 0.05 and after["unknown"] == 0
    old, new = base.model.state_dict(), tuned.model.state_dict()
    for name in ("rnn.blocks.0.cell.linear.weight", "rnn.blocks.1.mlp.0.weight"):
        assert 0 < float((new[name] - old[name]).norm() / old[name].norm()) < 0.6, name
