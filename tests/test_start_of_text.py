"""The start of a text: training, generation and evaluation all begin with the start-of-text context,
and lower-casing is the tokenizer's own property (training text, prompts and evaluation text alike)."""

import json

import pytest
import torch
from conftest import single_thread, tiny_train_args

import rnnlab
from rnnlab.config import ModelConfig
from rnnlab.data.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, tokenizer_from_dict
from rnnlab.models.rnn_lm import RNNLanguageModel
from rnnlab.training import metrics
from rnnlab.training.metrics import evaluate_ids
from rnnlab.training.objectives import SequenceObjective


def test_the_start_context_is_a_newline_when_the_vocabulary_has_one():
    char = CharTokenizer.train("ab\ncd")
    assert char.start_ids() == char.encode("\n")
    assert CharTokenizer.train("abcd").start_ids() == []  # never <unk>
    word = WordTokenizer.train("a b\nc d")
    assert word.decode(word.start_ids()) == "\n"
    bpe = BPETokenizer.train("ab cd ab\n", 260)
    assert bpe.decode(bpe.start_ids()) == "\n"


@pytest.mark.parametrize("make", [lambda: CharTokenizer.train("Mowgli\nMOWGLI", lower=True),
                                  lambda: BPETokenizer.train("Mowgli\nMOWGLI", 260, lower=True),
                                  lambda: WordTokenizer.train("Mowgli\nMOWGLI", lower=True)])
def test_lower_is_a_property_of_every_tokenizer(make):
    tok = make()
    assert tok.encode("MoWgLi") == tok.encode("mowgli")
    assert tok.unknown_items("MOWGLI") == []
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.lower and again.encode("MOWGLI") == tok.encode("mowgli")


def test_a_lower_char_vocabulary_has_no_capitals_and_old_files_load_as_before():
    tok = CharTokenizer.train("Mowgli", lower=True)
    assert tok.chars == tuple(sorted("mowgli"))
    assert "lower" not in CharTokenizer.train("ab").to_dict()  # files of models that predate it are unchanged
    assert not tokenizer_from_dict({"format_version": 1, "kind": "char", "chars": ["a"]}).lower


def test_cli_lower_lowercases_the_training_text_of_a_char_model(tmp_path, small_corpus):
    from rnnlab.cli import main

    out = tmp_path / "lower"
    with single_thread():
        assert main(tiny_train_args(small_corpus, out, "--lower", "--max-steps", "3", "--eval-every", "3")) == 0
    chars = json.loads((out / "tokenizer.json").read_text())["chars"]
    assert not any(c.isupper() for c in chars)
    lm = rnnlab.load(out)
    # Capitals in a prompt are known: the tokenizer lower-cases them as it did the training text; the
    # prompt is echoed as typed, the continuation is in the model's (lower-case) alphabet.
    (sample,) = lm.sample("MOWGLI", length=30, seed=0, unknown="error")
    assert sample.text == "MOWGLI" + sample.continuation and sample.continuation == sample.continuation.lower()


def test_training_streams_begin_with_the_start_context(tmp_path, small_corpus, monkeypatch):
    seen = []
    real = SequenceObjective.batches
    monkeypatch.setattr(SequenceObjective, "batches", lambda self, data, *a: seen.append(data) or real(self, data, *a))
    with single_thread():
        lm = rnnlab.train(small_corpus, tmp_path / "m", hidden_size=16, layers=1, embedding_size=8, seq_len=16,
                          batch_size=4, max_steps=1, eval_every=1, sample_every=0, progress=False)
    start = lm.tokenizer.start_ids()
    assert start and seen[0][:len(start)].tolist() == start


def test_prompts_are_read_after_the_start_context(char_model_dir):
    lm = rnnlab.load(char_model_dir)
    start = lm.tokenizer.start_ids()
    assert start
    ids = start + lm.tokenizer.encode("Mowgli")
    with torch.inference_mode():
        logits, _ = lm.model(torch.tensor([ids]))
    expected = torch.softmax(logits[0, -1].float(), -1)
    (token, p), *_ = lm.predict_next("Mowgli", k=1)
    assert p == pytest.approx(float(expected.max()), rel=1e-5)
    assert token == lm.tokenizer.token_text(int(expected.argmax()))


def test_evaluation_scores_every_token_from_the_start_context(char_model_dir):
    lm = rnnlab.load(char_model_dir)
    text = "Mowgli ran."
    metrics = lm.evaluate(text, is_text=True)
    assert metrics["tokens"] == len(text)  # the first character is predicted too
    ids = lm.tokenizer.start_ids() + lm.tokenizer.encode(text)
    with torch.inference_mode():
        logits, _ = lm.model(torch.tensor([ids[:-1]]))
    nats = torch.nn.functional.cross_entropy(logits[0].float(), torch.tensor(ids[1:]), reduction="sum")
    assert metrics["bpc"] == pytest.approx(float(nats) / len(text) / 0.6931471805599453, rel=1e-5)


def test_parallel_evaluation_rows_score_as_one_long_row(monkeypatch):
    """Rows after the first are warmed up on the tokens before them: cutting the stream costs no context."""
    torch.manual_seed(0)
    model = RNNLanguageModel(ModelConfig(vocab_size=7, hidden_size=24, embedding_size=8, layers=2)).eval()
    ids = torch.randint(0, 7, (8000,))
    cpu = torch.device("cpu")
    one_row = evaluate_ids(model, ids, 1.0, cpu, batch_size=1, seq_len=64)
    rows = evaluate_ids(model, ids, 1.0, cpu, batch_size=16, seq_len=64)
    assert rows["tokens"] == one_row["tokens"] == ids.numel() - 1
    warm_error = abs(rows["loss"] - one_row["loss"]) / one_row["loss"]
    monkeypatch.setattr(metrics, "_WARMUP", 1)  # (almost) cold rows, for scale
    cold = evaluate_ids(model, ids, 1.0, cpu, batch_size=16, seq_len=64)
    cold_error = abs(cold["loss"] - one_row["loss"]) / one_row["loss"]
    assert warm_error < 1e-7 and cold_error > 10 * warm_error


def test_an_interactive_story_starts_with_the_start_context(char_model_dir):
    from rnnlab.config import SampleConfig
    from rnnlab.generation.session import Session

    lm = rnnlab.load(char_model_dir)
    session = Session(lm, SampleConfig(length=5, seed=0))
    session.add_text("Mowgli")
    start = lm.tokenizer.start_ids()
    assert session.context[:len(start)] == start
    assert session.text == "Mowgli"
