"""The Keras tutorials' workflows through rnnlab's command line (and the API behind it), on tiny models.

Each workflow of README.md's "From Keras tutorials to rnnlab (example index)" section is run here the
way a user types it: Keras word indexing, the window and prefix objectives, one-hot inputs, bidirectional
encoders (and their refusal with the sequence objective), next-word prediction, the named decoding
strategies and the reference cells.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import rnnlab
from rnnlab.api import LanguageModel
from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.models.rnn_lm import RNNLanguageModel

HELLO = "Hello world. This is a simple LSTM example."
HELLO_WORDS = ["hello", "world", "this", "is", "a", "simple", "lstm", "example"]
SENTENCES = ["I love machine learning", "I love deep learning", "I enjoy natural language processing",
             "Deep learning is amazing"]
# Enough characters for a few char-level batches, short enough to train in a second or two.
FROST = ("Two roads diverged in a yellow wood,\nAnd sorry I could not travel both\nAnd be one traveler, long "
         "I stood\nAnd looked down one as far as I could\nTo where it bent in the undergrowth;\n") * 3
QUIET = ["--no-progress", "--sample-every", "0", "--seed", "0"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two CPU threads on a shared two-core machine only wait for each other on models this small."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_cli(corpus, out, *flags: str) -> None:
    assert main(["train", str(corpus), "-o", str(out), *QUIET, *flags]) == 0


@pytest.fixture(scope="module")
def hello_model(tmp_path_factory):
    """The tutorial's one sentence, Keras word indexing, window objective: 2 words -> the next one."""
    tmp = tmp_path_factory.mktemp("hello")
    corpus = tmp / "hello.txt"
    corpus.write_text(HELLO + "\n", encoding="utf-8")
    out = tmp / "model"
    train_cli(corpus, out, "--val-file", str(corpus), "--level", "word", "--keras-compat",
              "--objective", "window", "--window", "2", "--layers", "1", "--hidden", "32", "--embedding", "16",
              "--dropout", "0", "--lr", "0.03", "--warmup", "0", "--epochs", "30", "--patience", "1000")
    return out


@pytest.fixture(scope="module")
def sentences_model(tmp_path_factory):
    """Four separate sentences, prefix objective, with a bidirectional encoder."""
    tmp = tmp_path_factory.mktemp("sentences")
    corpus = tmp / "sentences.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp / "model"
    train_cli(corpus, out, "--val-file", str(corpus), "--level", "word", "--keras-compat",
              "--objective", "prefixes", "--bidirectional", "--layers", "1", "--hidden", "24",
              "--embedding", "10", "--dropout", "0", "--lr", "0.03", "--warmup", "0", "--epochs", "30",
              "--patience", "1000")
    return out


@pytest.fixture(scope="module")
def frost_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("frost") / "frost.txt"
    path.write_text(FROST, encoding="utf-8")
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------------------ Keras word indexing

def test_train_with_keras_compat_indexes_words_as_keras_does(hello_model, capsys):
    lm = rnnlab.load(hello_model)
    # Keras: word_index from 1 by frequency (all ties here, so by first appearance), lower-cased,
    # punctuation filtered; 0 is kept for padding.
    assert lm.tokenizer.word_index == {w: i for i, w in enumerate(HELLO_WORDS, start=1)}
    assert lm.tokenizer.vocab_size == 9 and lm.tokenizer.pad_id == 0
    code, out, _ = run_cli(capsys, "info", str(hello_model), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["data"]["keras_compat"] is True and info["tokenizer"]["vocab_size"] == 9


# ----------------------------------------------------------------------------- window objective

def test_window_objective_learns_the_next_word_after_two(hello_model, capsys):
    config = json.loads((hello_model / "config.json").read_text())
    assert config["train"]["objective"] == "window" and config["train"]["window"] == 2
    assert config["model"]["output"] == "last"
    summary = json.loads((hello_model / "summary.json").read_text())
    # 8 words give 6 windows of 2 with their next word: one batch of 32 per epoch.
    assert summary["steps"] == summary["epochs_completed"] == 30
    code, out, _ = run_cli(capsys, "generate", str(hello_model), "--prompt", "hello world", "--strategy",
                           "greedy", "--length", "6")
    assert code == 0
    assert out == " ".join(HELLO_WORDS) + "\n"


def test_window_stride_and_onehot_input(frost_file, tmp_path, capsys):
    out = tmp_path / "m"
    train_cli(frost_file, out, "--objective", "window", "--window", "8", "--stride", "5", "--input", "onehot",
              "--layers", "1", "--hidden", "16", "--batch-size", "16", "--epochs", "1", "--split", "0.8,0.2,0")
    lm = rnnlab.load(out)
    assert lm.model.embedding is None
    info = lm.info()
    V, H = info["tokenizer"]["vocab_size"], 16
    # One-hot input: no embedding layer; the LSTM reads V-wide vectors.
    assert "embedding" not in info["parameters"] and "embedding" not in info["keras_parameters"]
    assert info["parameters"]["rnn"] == 4 * H * (V + H) + 2 * 4 * H
    assert info["keras_parameters"]["lstm_0"] == 4 * (H * (V + H) + H)
    train_chars = info["corpus"]["train_tokens"]
    windows = len(range(0, train_chars - 8, 5))  # a window every 5 characters, each with its target
    assert info["training"]["steps"] == math.ceil(windows / 16)
    code, text, _ = run_cli(capsys, "info", str(out))
    assert "one-hot input" in text and "window 8, stride 5" in text


# ----------------------------------------------------------------------------- prefix objective

def test_prefix_objective_with_a_bidirectional_encoder(sentences_model, capsys):
    config = json.loads((sentences_model / "config.json").read_text())
    assert config["train"]["objective"] == "prefixes" and config["model"]["bidirectional"] is True
    # 17 words in 4 lines -> 3 + 3 + 4 + 3 = 13 prefixes of length >= 2, each scored once.
    assert json.loads((sentences_model / "summary.json").read_text())["best"]["val_tokens"] == 13
    code, out, _ = run_cli(capsys, "predict-next", str(sentences_model), "I love", "-k", "3", "--json")
    assert code == 0
    top = json.loads(out)
    assert {top[0]["token"], top[1]["token"]} == {"machine", "deep"}
    assert top[0]["probability"] + top[1]["probability"] > 0.8


def test_bidirectional_is_refused_with_the_sequence_objective(frost_file, tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", str(frost_file), "-o", str(tmp_path / "m"), "--bidirectional",
                             "--hidden", "8", "--epochs", "1", "--no-progress")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "--bidirectional" in err and "sequence objective" in err and "window or prefixes" in err
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="--bidirectional"):
        rnnlab.train(frost_file, tmp_path / "api", bidirectional=True, hidden_size=8, epochs=1)


# ---------------------------------------------------------------------------- next-word prediction

def test_predict_next_prints_k_tokens_with_probabilities(hello_model, capsys):
    code, out, _ = run_cli(capsys, "predict-next", str(hello_model), "This is a", "-k", "5")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 5
    probs = [float(line.split()[0]) for line in lines]
    assert probs == sorted(probs, reverse=True) and probs[0] > 0.5
    assert lines[0].split()[1] == "'simple'"
    code, out, _ = run_cli(capsys, "predict-next", str(hello_model), "This is a", "-k", "5", "--json")
    as_json = json.loads(out)
    api = rnnlab.load(hello_model).predict_next("This is a", k=5)
    assert [(d["token"], d["probability"]) for d in as_json] == [(t, pytest.approx(p)) for t, p in api]


def test_predict_next_never_offers_padding_and_still_gives_k(hello_model):
    lm = rnnlab.load(hello_model)
    # k = the whole vocabulary (9 with padding): every word, padding left out, probabilities summing
    # to what padding leaves over.
    everything = lm.predict_next("is a", k=9)
    assert sorted(t for t, _ in everything) == sorted(HELLO_WORDS)
    assert sum(p for _, p in everything) == pytest.approx(1.0, abs=0.02)
    # Even when the network ranks padding first (as an untrained one may), k real tokens come back.
    with torch.no_grad():
        lm.model.decoder.bias[lm.tokenizer.pad_id] += 50.0
    top3 = lm.predict_next("is a", k=3)
    assert len(top3) == 3 and top3[0][0] == "simple"
    with pytest.raises(ConfigError, match="-k"):
        lm.predict_next("is a", k=0)


# ------------------------------------------------------------------------------- decoding strategies

def test_every_strategy_with_a_single_choice_is_greedy(hello_model):
    lm = rnnlab.load(hello_model)
    greedy = lm.generate("is a", length=4, strategy="greedy")
    assert greedy.startswith("is a simple lstm example ")
    assert lm.generate("is a", length=4, temperature=0) == greedy
    assert lm.generate("is a", length=4, top_k=1, seed=3) == greedy
    assert lm.generate("is a", length=4, top_p=0.01, seed=3) == greedy
    assert lm.generate("is a", length=4, strategy="creativity", top_k=1, seed=3) == greedy


def test_creativity_picks_uniformly_among_the_k_most_likely(hello_model):
    lm = rnnlab.load(hello_model)
    top3 = [t for t, _ in lm.predict_next("is a", k=3)]
    samples = lm.sample("is a", length=1, strategy="creativity", top_k=3, num_samples=300, seed=0)
    counts = {t: 0 for t in top3}
    for s in samples:
        counts[s.tokens[0]] += 1  # KeyError if a token outside the top 3 was drawn
    # The model gives 'simple' > 0.5, yet each of the 3 is drawn about 100 times (binomial sd ~8).
    assert all(60 < n < 140 for n in counts.values()), counts
    # Plain sampling at temperature 1 follows the model instead: 'simple' dominates.
    plain = lm.sample("is a", length=1, temperature=1.0, num_samples=300, seed=0)
    assert sum(s.tokens[0] == "simple" for s in plain) > 150


def test_temperature_and_top_p_shape_the_draws(hello_model):
    lm = rnnlab.load(hello_model)
    p_top = lm.predict_next("is a", k=1)[0][1]

    def share_of_top(**options):
        samples = lm.sample("is a", length=1, num_samples=400, seed=1, **options)
        return sum(s.tokens[0] == "simple" for s in samples) / len(samples)

    hot, cold = share_of_top(temperature=3.0), share_of_top(temperature=0.3)
    assert hot < p_top - 0.05 < cold
    assert share_of_top(temperature=1.0, top_p=p_top * 0.9) == 1.0  # the nucleus is the top token alone


# -------------------------------------------------------------------------------- reference cells

def test_reference_cells_train_end_to_end(frost_file, tmp_path, capsys):
    out = tmp_path / "ref"
    train_cli(frost_file, out, "--cell-impl", "reference", "--cell", "gru", "--layers", "2", "--hidden", "16",
              "--embedding", "8", "--seq-len", "16", "--batch-size", "4", "--epochs", "2", "--lr", "0.01",
              "--warmup", "0", "--split", "0.8,0.2,0")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and records[-1]["val_loss"] < records[0]["val_loss"]
    lm = rnnlab.load(out)
    assert lm.model.config.cell_impl == "reference"
    text = lm.generate("Two", length=30, seed=0)
    assert text.startswith("Two") and len(text) == 33
    # The reference weights load into the fused cells and score the same.
    fused = RNNLanguageModel(lm.model.config.replace(cell_impl="fused"))
    fused.load_state_dict(lm.model.state_dict())
    fused_lm = LanguageModel(fused.eval(), lm.tokenizer, lm.configs, None)
    assert fused_lm.evaluate(FROST, is_text=True)["loss"] == pytest.approx(
        lm.evaluate(FROST, is_text=True)["loss"], abs=1e-4)


def test_a_unidirectional_prefix_model_samples_in_linear_time_with_the_same_tokens(tmp_path):
    """Re-reading the growing row from the zero state and carrying the state are the same computation: the
    sampler carries it (each token read once) and gives the tokens the re-reading would."""
    corpus = tmp_path / "sentences.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp_path / "model"
    train_cli(corpus, out, "--val-file", str(corpus), "--level", "word", "--objective", "prefixes",
              "--layers", "2", "--hidden", "16", "--embedding", "8", "--dropout", "0", "--epochs", "3")
    lm = rnnlab.load(out)
    fed = []
    forward = lm.model.forward

    def counting(ids, *args, **kwargs):
        fed.append(ids.shape[1])
        return forward(ids, *args, **kwargs)

    lm.model.forward = counting
    sample = lm.sample("the cat", length=40, temperature=0, unknown="replace")[0]
    prompt_ids, _ = lm._prompt_ids("the cat", "replace")
    # Each token read once (the last one too: the decoder hands back the logits after it); quadratic
    # re-reading fed ~40 * 40 / 2.
    assert sum(fed) == len(prompt_ids) + 40, fed
    lm.model.forward = forward
    row = list(prompt_ids)
    with torch.inference_mode():
        for _ in range(40):
            logits, _ = lm.model(torch.tensor([row]))
            row.append(int(logits[0].argmax()))
    assert [lm.tokenizer.token_text(i) for i in row[len(prompt_ids):]] == sample.tokens
