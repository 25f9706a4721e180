"""The pretrained default model shipped in rnnlab/pretrained/default works out of the box.

These tests use the real shipped model (a 2-layer, 512-unit character LSTM trained on Tiny Shakespeare
and the Jungle Book's training part). Each test reads `api.DEFAULT_MODEL_DIR` when it runs, so the code
paths can also be exercised against another model directory by patching that one name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import rnnlab
from rnnlab import api, cli
from rnnlab.data.corpus import read_corpus


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def default_lm():
    return rnnlab.load()


@pytest.fixture
def jungle_test_slice(shared_data, tmp_path) -> Path:
    """4,000 characters from the Jungle Book's held-out test part (its last 10%, never trained on)."""
    path = tmp_path / "jungle-test.txt"
    path.write_text(read_corpus(shared_data / "jungle-book.txt")[-4_000:], encoding="utf-8")
    return path


def test_the_default_model_is_shipped_in_the_package():
    assert api.DEFAULT_MODEL_DIR.is_dir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        assert (api.DEFAULT_MODEL_DIR / name).is_file(), name


def test_load_with_no_argument_is_the_default(default_lm):
    assert default_lm.path == api.DEFAULT_MODEL_DIR
    assert rnnlab.load("default").path == api.DEFAULT_MODEL_DIR
    info = default_lm.info()
    assert info["model"]["output"] == "sequence"
    assert info["parameters"]["total"] > 0


def test_generate_with_no_model_uses_the_default(default_lm, capsys):
    assert cli.main(["generate", "--prompt", "Mowgli", "--length", "60", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out == default_lm.generate("Mowgli", length=60, seed=1) + "\n"
    assert out.startswith("Mowgli") and len(out.strip()) > len("Mowgli") + 20


def test_evaluate_default_on_held_out_text(default_lm, jungle_test_slice, capsys):
    assert cli.main(["evaluate", "default", str(jungle_test_slice), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    expected = default_lm.evaluate(jungle_test_slice)
    for key in ("loss", "bpc", "perplexity", "accuracy", "tokens"):
        assert metrics[key] == pytest.approx(expected[key]), key
    # A trained model, far better than guessing among its characters uniformly.
    uniform_bpc = math.log2(default_lm.tokenizer.vocab_size)
    assert metrics["bpc"] < 0.6 * uniform_bpc
    assert metrics["unknown"] == 0


def test_init_from_default_lowers_the_loss_on_another_text(default_lm, shared_data, tmp_path, capsys):
    text = (shared_data / "tiny-shakespeare.txt").read_text(encoding="utf-8")
    train, held_out = tmp_path / "train.txt", tmp_path / "held-out.txt"
    train.write_text(text[200_000:208_000], encoding="utf-8")
    held_out.write_text(text[700_000:703_000], encoding="utf-8")
    before = default_lm.evaluate(held_out)["loss"]
    out = tmp_path / "tuned"
    assert cli.main(["train", str(train), "-o", str(out), "--init-from", "default", "--max-steps", "12",
                     "--batch-size", "8", "--seq-len", "64", "--lr", "2e-3", "--warmup", "0",
                     "--sample-every", "0", "--no-progress"]) == 0
    tuned = rnnlab.load(out)
    assert tuned.model.config.replace(vocab_size=0, dropout=0) == \
        default_lm.model.config.replace(vocab_size=0, dropout=0)
    assert tuned.evaluate(held_out)["loss"] < before - 0.02


def test_the_shipped_figures_are_this_models(default_lm, shared_data, tmp_path, jungle_book_split):
    """evaluation.json (the model card's table) holds what the shipped weights score on the benchmark split."""
    recorded = json.loads((api.DEFAULT_MODEL_DIR / "evaluation.json").read_text(encoding="utf-8"))
    _, test = jungle_book_split(read_corpus(shared_data / "jungle-book.txt"))
    path = tmp_path / "jungle-test.txt"
    path.write_text(test, encoding="utf-8")
    assert default_lm.evaluate(path)["bpc"] == pytest.approx(recorded["test_bpc_exported_fp16"], abs=2e-3)
    card = (api.DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"{recorded['test_bpc_exported_fp16']:.3f}" in card
