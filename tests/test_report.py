"""`rnnlab info` (PyTorch and Keras parameter counts) and `rnnlab plot` (the training history)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from rnnlab.api import keras_parameter_count
from rnnlab.cli import main
from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError, ModelDirError, RnnlabError
from rnnlab.models.rnn_lm import RNNLanguageModel, count_parameters
from rnnlab.report import format_info, plot_history, read_history

# --------------------------------------------------------------------------- Keras parameter counts
# Expected values from Keras' documented formulas, written out by hand:
#   Embedding(V, E)             V*E
#   LSTM(u) on n inputs         4*(u*(n+u) + u)          one bias vector per gate
#   GRU(u), reset_after=True    3*(u*(n+u) + 2*u)        two bias vectors per gate (Keras' default)
#   SimpleRNN(u)                u*(n+u) + u
#   Bidirectional(layer)        2 * layer
#   Dense(V) on n inputs        n*V + V

CASES = [
    # (config, Keras' model.summary() counts)
    (dict(vocab_size=50, cell="lstm", layers=2, hidden_size=32, embedding_size=16),
     {"embedding": 800, "lstm_0": 4 * (32 * 48 + 32), "lstm_1": 4 * (32 * 64 + 32), "dense": 32 * 50 + 50}),
    (dict(vocab_size=30, cell="gru", layers=1, hidden_size=20, embedding_size=10),
     {"embedding": 300, "gru_0": 3 * (20 * 30 + 40), "dense": 20 * 30 + 30}),
    (dict(vocab_size=30, cell="rnn_tanh", layers=1, hidden_size=20, input="onehot"),
     {"rnn_tanh_0": 20 * 50 + 20, "dense": 20 * 30 + 30}),
    (dict(vocab_size=30, cell="lstm", layers=2, hidden_size=20, embedding_size=10, bidirectional=True,
          output="last"),
     {"embedding": 300, "lstm_0": 2 * 4 * (20 * 30 + 20), "lstm_1": 2 * 4 * (20 * 60 + 20),
      "dense": 40 * 30 + 30}),
]


@pytest.mark.parametrize(("options", "expected"), CASES)
def test_keras_parameter_counts_follow_keras_formulas(options, expected):
    config = ModelConfig(**options)
    counts = keras_parameter_count(config)
    assert counts == {**expected, "total": sum(expected.values())}
    # PyTorch keeps a second bias vector per gate (b_ih and b_hh); Keras' GRU (reset_after) does too.
    torch_total = count_parameters(RNNLanguageModel(config))["total"]
    gates = {"lstm": 4, "gru": 3, "rnn_tanh": 1}[config.cell]
    extra = 0 if config.cell == "gru" else gates * config.hidden_size * config.layers * \
        (2 if config.bidirectional else 1)
    assert torch_total - counts["total"] == extra


# ------------------------------------------------------------------------------------------- info

@pytest.fixture(scope="module")
def stopped_early(tmp_path_factory):
    """A tiny char model whose learning rate is far too high, so early stopping ends it."""
    tmp = tmp_path_factory.mktemp("report")
    corpus = tmp / "poem.txt"
    corpus.write_text("Two roads diverged in a yellow wood,\nAnd sorry I could not travel both\n" * 6,
                      encoding="utf-8")
    out = tmp / "model"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", str(corpus), "-o", str(out), "--hidden", "16", "--layers", "1", "--embedding",
                     "8", "--seq-len", "8", "--batch-size", "4", "--epochs", "40", "--eval-every", "4",
                     "--patience", "2", "--lr", "0.3", "--warmup", "0", "--schedule", "constant",
                     "--split", "0.8,0.2,0", "--no-progress", "--sample-every", "0", "--seed", "0"]) == 0
    finally:
        torch.set_num_threads(before)
    return out


def test_info_shows_pytorch_and_keras_counts_side_by_side(stopped_early, capsys):
    capsys.readouterr()
    assert main(["info", str(stopped_early)]) == 0
    text = capsys.readouterr().out
    info = json.loads((stopped_early / "config.json").read_text())
    V = info["model"]["vocab_size"]
    keras = {"embedding": V * 8, "lstm_0": 4 * (16 * (8 + 16) + 16), "dense": 16 * V + V}
    torch_counts = {"embedding": V * 8, "rnn": 4 * 16 * (8 + 16) + 8 * 16, "decoder": 16 * V + V}
    total_row = [line for line in text.splitlines() if "total" in line]
    assert total_row == [f"                 {'total':<16}{sum(torch_counts.values()):>10,}  "
                         f"{'total':<16}{sum(keras.values()):>10,}"]
    for name, n in keras.items():
        assert f"{name:<16}{n:>10,}" in text
    assert "64 more in PyTorch" in text  # 4 gates x 16 units: the second bias vector
    assert "stopped by early_stopping" in text


def test_format_info_without_training_facts():
    info = {"path": "x", "model": ModelConfig(vocab_size=5, layers=1, hidden_size=4, cell="gru").to_dict(),
            "tokenizer": {"kind": "char", "vocab_size": 5},
            "parameters": {"embedding": 640, "rnn": 1608, "decoder": 25, "total": 2273},
            "keras_parameters": {"embedding": 640, "gru_0": 1608, "dense": 25, "total": 2273}}
    text = format_info(info)
    assert "more in PyTorch" not in text  # GRU: the same count in both
    assert "corpus" not in text and "run  " not in text


def test_format_info_names_every_regulariser_and_the_precision():
    from rnnlab.config import TrainConfig

    model = ModelConfig(vocab_size=5, layers=2, hidden_size=4, dropout=0.3, locked_dropout=True,
                        embed_dropout=0.1, weight_drop=0.2).to_dict()
    info = {"path": "x", "model": model, "tokenizer": {"kind": "char", "vocab_size": 5},
            "parameters": {"total": 1}, "keras_parameters": None,
            "train": TrainConfig(ar=2.0, tar=1.0, precision="bf16").to_dict()}
    text = format_info(info)
    for needle in ("dropout 0.3 (locked: one mask per sequence)", "embedding dropout 0.1", "weight drop 0.2",
                   "activation regularisation (AR) 2.0", "temporal AR (TAR) 1.0", "precision bf16"):
        assert needle in text, needle
    plain = format_info({**info, "model": ModelConfig(vocab_size=5).to_dict(), "train": TrainConfig().to_dict()})
    assert not any(word in plain for word in ("locked", "embedding dropout", "AR)", "precision"))


# ------------------------------------------------------------------------------------------ plot

def test_history_marks_the_kept_weights_and_the_early_stop(stopped_early):
    records = [json.loads(line) for line in (stopped_early / "metrics.jsonl").read_text().splitlines()]
    history = read_history(stopped_early)
    best = min(records, key=lambda r: r["val_loss"])
    assert history.stopped == "early_stopping"
    assert history.best_epoch == best["epoch"] and history.best_val_loss == best["val_loss"]
    assert history.stop_epoch == records[-1]["epoch"] > history.best_epoch
    assert history.val_loss == [r["val_loss"] for r in records]
    assert history.train_accuracy == [r["train_accuracy"] for r in records]
    assert history.epoch == sorted(history.epoch) and len(history.epoch) >= 3


def test_plot_writes_a_png(stopped_early, tmp_path, capsys):
    import matplotlib.image

    out = tmp_path / "history.png"
    capsys.readouterr()
    assert main(["plot", str(stopped_early), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (462, 1210)  # 11 x 4.2 inches at 110 dpi
    # Not a blank canvas: the curves and markers draw in colour.
    rgb = pixels[..., :3]
    assert ((rgb.max(-1) - rgb.min(-1)) > 0.3).mean() > 0.002
    assert not list(tmp_path.glob(".history.png.*"))  # the atomic write left no temp file


def test_plot_from_metrics_alone(tmp_path):
    # A run still going (no summary.json): no early-stop line, the best evaluation still marked.
    records = [{"step": s, "epoch": s / 10, "train_loss": 3 - s / 10, "train_accuracy": s / 100,
                "val_loss": [2.5, 2.0, 2.2][i], "val_accuracy": 0.1 * i, "best": i == 1}
               for i, s in enumerate((10, 20, 30))]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    history = read_history(tmp_path)
    assert history.best_epoch == 2.0 and history.stopped is None
    assert plot_history(tmp_path, tmp_path / "h.svg").read_text().lstrip().startswith("<?xml")


def test_plot_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(ModelDirError, match="no training history"):
        plot_history(tmp_path, tmp_path / "h.png")
    with pytest.raises(ConfigError, match=r"\.png"):
        plot_history(tmp_path, tmp_path / "h.jpeg2")
    with pytest.raises(RnnlabError, match="does not exist"):
        plot_history(tmp_path, tmp_path / "missing" / "h.png")
    capsys.readouterr()
    assert main(["plot", str(tmp_path / "nowhere"), "-o", str(tmp_path / "h.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: ") and len(err.strip().splitlines()) == 1


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_loss": 1.0}) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(RnnlabError, match=r"pip install 'rnnlab\[plot\]'"):
        plot_history(tmp_path, tmp_path / "h.png")


def test_matplotlib_is_imported_only_to_plot():
    code = ("import sys, rnnlab.cli, rnnlab.report, rnnlab.api; "
            "assert 'matplotlib' not in sys.modules, 'imported early'")
    subprocess.run([sys.executable, "-c", code], check=True)
