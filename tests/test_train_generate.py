"""The main job through the command line: train, checkpoint, resume, generate, evaluate, info."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import sigint_as_a_terminal_sends_it, single_thread, tiny_train_args

import rnnlab
from rnnlab import _io
from rnnlab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_training_writes_a_self_describing_model_directory(trained_model):
    names = {p.name for p in trained_model.iterdir()}
    assert {"config.json", "tokenizer.json", "model.safetensors", "training_state.safetensors",
            "metrics.jsonl", "summary.json"} <= names
    records = [json.loads(line) for line in (trained_model / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2  # one evaluation per epoch
    for r in records:
        assert r["val_perplexity"] == pytest.approx(2.718281828 ** r["val_loss"], rel=1e-6)
        assert 0 <= r["val_accuracy"] <= 1
    # bits per character for a char model: nats per token / ln 2
    assert records[-1]["val_bpc"] == pytest.approx(records[-1]["val_loss"] / 0.6931471805599453, rel=1e-6)
    assert records[-1]["val_loss"] < records[0]["val_loss"]
    summary = json.loads((trained_model / "summary.json").read_text())
    assert summary["stopped"] == "epochs" and summary["epochs_completed"] == 2


def test_best_weights_are_kept_not_the_last(tmp_path, small_corpus):
    # A learning rate far too high makes validation worse after the first evaluation.
    out = tmp_path / "m"
    assert main(tiny_train_args(small_corpus, out, "--max-steps", "60", "--eval-every", "20",
                                "--lr", "0.05", "--warmup", "0", "--schedule", "constant")) == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    best = min(records, key=lambda r: r["val_loss"])
    lm = rnnlab.load(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["step"] == best["step"]
    # model.safetensors holds the weights of the best evaluation: re-scoring validation reproduces it.
    from rnnlab.config import DataConfig
    from rnnlab.data.splits import load_corpus_splits
    valid = load_corpus_splits(small_corpus, DataConfig()).valid
    assert lm.evaluate(valid, is_text=True, seq_len=32)["loss"] == pytest.approx(best["val_loss"], abs=1e-5)


def test_ema_evaluates_and_keeps_the_averaged_weights(tmp_path, small_corpus):
    out = tmp_path / "m"
    assert main(tiny_train_args(small_corpus, out, "--max-steps", "30", "--ema", "0.9")) == 0
    state = _io.load_tensors(out / "training_state.safetensors")
    live = [state[f"model.{name}"] for name, _ in rnnlab.load(out).model.named_parameters()]
    averaged = [state[f"average.{i}"] for i in range(len(live))]
    kept = list(_io.load_tensors(out / "model.safetensors").values())
    # One evaluation (at the end): the kept weights are the average, which differs from the live weights.
    assert all(any(torch.equal(a, k) for k in kept) for a in averaged)
    assert not all(torch.equal(a, w) for a, w in zip(averaged, live, strict=True))
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    from rnnlab.config import DataConfig
    from rnnlab.data.splits import load_corpus_splits
    valid = load_corpus_splits(small_corpus, DataConfig()).valid
    assert rnnlab.load(out).evaluate(valid, is_text=True, seq_len=32)["loss"] == \
        pytest.approx(record["val_loss"], abs=1e-5)


def test_early_stopping_stops_on_patience(tmp_path, small_corpus):
    out = tmp_path / "m"
    assert main(tiny_train_args(small_corpus, out, "--epochs", "50", "--eval-every", "10", "--patience",
                                "2", "--lr", "0.2", "--warmup", "0", "--schedule", "constant")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] == "early_stopping"
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["best"] for r in records[-2:]] == [False, False]


def _weights(path: Path, prefixes: tuple[str, ...] = ("model.",)) -> dict[str, torch.Tensor]:
    return {k: v for k, v in _io.load_tensors(path).items() if k.startswith(prefixes)}


def test_same_seed_gives_bitwise_same_weights(tmp_path, small_corpus):
    for name in ("a", "b"):
        assert main(tiny_train_args(small_corpus, tmp_path / name, "--max-steps", "25", "--seed", "7",
                                    "--dropout", "0.3")) == 0
    a = _weights(tmp_path / "a" / "training_state.safetensors")
    b = _weights(tmp_path / "b" / "training_state.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert main(tiny_train_args(small_corpus, tmp_path / "c", "--max-steps", "25", "--seed", "8",
                                "--dropout", "0.3")) == 0
    c = _weights(tmp_path / "c" / "training_state.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("regularisation", [[], ["--weight-drop", "0.3", "--ema", "0.9"]],
                         ids=["plain", "weight-drop-and-ema"])
def test_resume_ends_bitwise_where_the_uninterrupted_run_ends(tmp_path, small_corpus, regularisation):
    # A constant rate after warm-up: cutting the first run with --max-steps must not change its schedule
    # (the cosine schedule spans the budget; the SIGKILL test below covers it).
    common = ["--seed", "3", "--dropout", "0.2", "--checkpoint-every", "10", "--eval-every", "15",
              "--epochs", "3", "--schedule", "constant", "--warmup", "20", "--patience", "100",
              *regularisation]
    assert main(tiny_train_args(small_corpus, tmp_path / "full", *common)) == 0
    assert main(tiny_train_args(small_corpus, tmp_path / "cut", *common, "--max-steps", "37")) == 0
    assert main(["train", str(small_corpus), "-o", str(tmp_path / "cut"), "--resume", "--no-progress",
                 "--max-steps", "100000"]) == 0
    full = _weights(tmp_path / "full" / "training_state.safetensors", prefixes=("model.", "average."))
    cut = _weights(tmp_path / "cut" / "training_state.safetensors", prefixes=("model.", "average."))
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)
    assert any(k.startswith("average.") for k in full) == bool(regularisation)
    full_metrics = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    cut_metrics = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    # The cut run's extra evaluation at its budget's end ("final") is the only difference in the log.
    strip = [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in full_metrics]
    strip_cut = [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in cut_metrics]
    assert [r for r in strip_cut if not (r["kind"] == "final" and r["step"] == 37)] == strip


def _spawn_training(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "rnnlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            preexec_fn=sigint_as_a_terminal_sends_it)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def _saved_step(path: Path) -> int:
    return json.loads(_io.load_tensor_metadata(path)["state"])["step"]


def _logged_steps(err: str) -> list[int]:
    return [int(line.split("|")[0].split()[1]) for line in err.splitlines() if line.startswith("step ")]


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, small_corpus, cell):
    common = ["--seed", "5", "--checkpoint-every", "5", "--eval-every", "5", "--epochs", "2",
              "--dropout", "0.1", "--cell", cell]
    torch.set_num_threads(1)
    try:
        assert main(tiny_train_args(small_corpus, tmp_path / "full", *common)) == 0
    finally:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    final_step = _saved_step(tmp_path / "full" / "training_state.safetensors")
    state = tmp_path / "killed" / "training_state.safetensors"
    proc = _spawn_training(tiny_train_args(small_corpus, tmp_path / "killed", *common))
    # Kill as soon as a mid-run checkpoint (step > 0) exists: no fixed sleep to race against.
    deadline = time.monotonic() + 60.0
    while not (state.exists() and _saved_step(state) > 0):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = _saved_step(state)
    assert 0 < saved < final_step, (saved, final_step)
    resumed = _spawn_training(["train", str(small_corpus), "-o", str(tmp_path / "killed"), "--resume",
                               "--no-progress"])
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    # The resumed run continued from the saved step: it logs only the evaluations after it.
    logged = _logged_steps(err)
    assert logged and min(logged) == (saved // 5 + 1) * 5 and max(logged) <= final_step, (saved, logged)
    assert _saved_step(state) == final_step
    full = _weights(tmp_path / "full" / "training_state.safetensors")
    killed = _weights(state)
    assert full.keys() == killed.keys() and all(torch.equal(full[k], killed[k]) for k in full)


def test_ctrl_c_writes_a_checkpoint_and_exits_cleanly(tmp_path, small_corpus):
    out = tmp_path / "m"
    proc = _spawn_training(tiny_train_args(small_corpus, out, "--epochs", "1000", "--checkpoint-every",
                                           "1000000", "--eval-every", "5"))
    _wait_for(out / "metrics.jsonl", proc)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "--resume" in err.strip().splitlines()[-1]
    assert (out / "training_state.safetensors").exists()


def test_generate_is_seeded_streams_and_stops(trained_model, capsys):
    assert main(["generate", str(trained_model), "--prompt", "The", "--length", "40", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert main(["generate", str(trained_model), "--prompt", "The", "--length", "40", "--seed", "1"]) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("The") and len(first.rstrip("\n")) == 3 + 40
    assert main(["generate", str(trained_model), "--prompt", "The", "--length", "300", "--seed", "2",
                 "--stop", " "]) == 0
    stopped = capsys.readouterr().out.rstrip("\n")
    assert stopped.endswith(" ") and stopped[3:-1].count(" ") == 0


def test_generate_json_gives_per_token_logprobs_and_batches(trained_model, capsys):
    assert main(["generate", str(trained_model), "--prompt", "Mowgli", "--length", "12",
                 "--num-samples", "3", "--seed", "4", "--json", "--top-k", "5", "--top-p", "0.9"]) == 0
    samples = json.loads(capsys.readouterr().out)
    assert len(samples) == 3
    for s in samples:
        assert s["text"].startswith("Mowgli") and len(s["tokens"]) == 12
        assert all(t["logprob"] <= 0 for t in s["tokens"])
        assert s["total_logprob"] == pytest.approx(sum(t["logprob"] for t in s["tokens"]))
        assert "".join(t["token"] for t in s["tokens"]) == s["continuation"]


def test_greedy_generation_is_deterministic_without_seed(trained_model):
    lm = rnnlab.load(trained_model)
    assert lm.generate("The ", length=30, temperature=0) == lm.generate("The ", length=30, temperature=0)


def test_stateful_decoding_matches_full_recompute(trained_model):
    """Log-probabilities from one-step-per-token decoding equal those of re-reading the whole text."""
    lm = rnnlab.load(trained_model)
    sample = lm.sample("Mowgli", length=25, seed=3, temperature=1.0)[0]
    # Generation reads the start-of-text context first, then the prompt.
    ids = lm.tokenizer.start_ids() + lm.tokenizer.encode("Mowgli" + sample.continuation)
    with torch.inference_mode():
        logits, _ = lm.model(torch.tensor([ids]))
    logprobs = torch.log_softmax(logits[0], -1)
    n_prompt = len(lm.tokenizer.start_ids() + lm.tokenizer.encode("Mowgli"))
    recomputed = [float(logprobs[n_prompt - 1 + i, ids[n_prompt + i]]) for i in range(25)]
    assert recomputed == pytest.approx(sample.logprobs, abs=1e-4)


def test_unknown_prompt_characters_error_or_replace(trained_model, capsys):
    assert main(["generate", str(trained_model), "--prompt", "Mowgli ☃", "--length", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'☃'" in err and "--unknown replace" in err
    assert main(["generate", str(trained_model), "--prompt", "Mowgli ☃", "--length", "5", "--unknown",
                 "replace", "--seed", "0"]) == 0


def test_evaluate_counts_unknown_characters(trained_model, tmp_path, capsys):
    text = tmp_path / "other.txt"
    text.write_text("Mowgli and Baloo went to the river. ☃☃ Zebra!\n", encoding="utf-8")
    assert main(["evaluate", str(trained_model), str(text), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["unknown"] >= 2 and "☃" in metrics["unknown_kinds"]
    # Every character is scored (the first one from the start-of-text context), the unknown ones too,
    # so bits per character is the mean loss per character, in bits.
    n_chars = len(text.read_text(encoding="utf-8"))
    assert metrics["tokens"] == n_chars
    assert metrics["bpc"] == pytest.approx(metrics["loss"] / 0.6931471805599453, rel=1e-6)


def test_info_shows_configuration_parameters_and_metrics(trained_model, capsys):
    assert main(["info", str(trained_model)]) == 0
    out = capsys.readouterr().out
    assert "lstm x 1 layer(s), hidden 48" in out and "total" in out and "best metrics" in out
    assert main(["info", str(trained_model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    V = info["tokenizer"]["vocab_size"]
    # embedding V*16, LSTM 4*48*(16+48) + 2*4*48 biases, decoder 48*V + V
    assert info["parameters"]["total"] == V * 16 + 4 * 48 * (16 + 48) + 8 * 48 + 48 * V + V
    assert info["keras_parameters"]["total"] == info["parameters"]["total"] - 4 * 48


def test_api_train_and_generate(tmp_path, small_corpus):
    lines = []
    lm = rnnlab.train(small_corpus, tmp_path / "api", hidden_size=32, layers=1, embedding_size=8,
                      seq_len=16, batch_size=4, max_steps=30, sample_every=0, log=lines.append,
                      progress=False)
    assert any("val loss" in line for line in lines)
    text = lm.generate("Mow", length=10, seed=0)
    assert isinstance(text, str) and text.startswith("Mow") and len(text) == 13
    assert len(lm.generate("Mow", length=5, num_samples=2, seed=0)) == 2


def test_dynamic_evaluation_adapts_to_the_text_and_leaves_the_model_alone(trained_model, capsys):
    lm = rnnlab.load(trained_model)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    text = "Akela the grey wolf led the pack at the council rock. " * 30
    static = lm.evaluate(text, is_text=True)
    dynamic = lm.evaluate(text, is_text=True, dynamic=True, dynamic_lr=0.1)
    # Every token is scored before the model learns from it; repetition makes adaptation pay.
    assert dynamic["tokens"] == static["tokens"]
    assert dynamic["loss"] < static["loss"] - 0.1
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())
    assert main(["evaluate", str(trained_model), __file__, "--dynamic", "--dynamic-lr", "-1"]) == 2
    assert "--dynamic-lr" in capsys.readouterr().err


def test_dynamic_evaluation_scores_each_segment_before_learning_from_it(trained_model):
    """Segment k is scored by a copy that has taken one SGD step on each of segments 0..k-1, never on k."""
    import copy

    import torch.nn.functional as F

    from rnnlab.training.dynamic_eval import evaluate_dynamic
    from rnnlab.training.metrics import evaluate_ids

    lm = rnnlab.load(trained_model)
    seg, lr, cpu, n_segments = 16, 0.5, torch.device("cpu"), 4
    text = "Akela the grey wolf led the pack at the council rock. " * 2
    ids = torch.tensor(lm.tokenizer.encode(text, unknown="replace"))[:n_segments * seg + 1]

    def segment(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return ids[k * seg:(k + 1) * seg][None], ids[k * seg + 1:(k + 1) * seg + 1][None]

    def nats(logits: torch.Tensor, y: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction=reduction)

    def learned_from(k: int):
        """A fresh copy after one SGD step (on the mean loss) per segment 0..k-1, and the state they carry."""
        model, state = copy.deepcopy(lm.model).eval(), None
        for j in range(k):
            x, y = segment(j)
            logits, state = model(x, state)
            model.zero_grad()
            nats(logits, y, "mean").backward()
            with torch.no_grad():
                for p in model.parameters():
                    if p.grad is not None:
                        p -= lr * p.grad
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return model, state

    expected = []
    for k in range(n_segments):
        model, state = learned_from(k)
        with torch.no_grad():
            expected.append(float(nats(model(segment(k)[0], state)[0], segment(k)[1])))

    def summed(m: int, dynamic: bool = True) -> float:
        """Total nats over the first m segments, by dynamic (or static) evaluation of just those."""
        prefix = ids[:m * seg + 1]
        metrics = evaluate_dynamic(lm.model, prefix, 1.0, cpu, seq_len=seg, lr=lr) if dynamic else \
            evaluate_ids(lm.model, prefix, 1.0, cpu, batch_size=1, seq_len=seg)
        return metrics["loss"] * metrics["tokens"]

    # The first segment is scored before any learning: its dynamic score is its static score.
    assert summed(1) == pytest.approx(summed(1, dynamic=False), rel=1e-5)
    for m in range(1, n_segments + 1):
        assert summed(m) == pytest.approx(sum(expected[:m]), rel=1e-5), m
    # The steps did change the later scores, so the comparison above is not between two static runs.
    assert abs(sum(expected) - summed(n_segments, dynamic=False)) > 0.5


def test_evaluation_hands_the_network_contiguous_states():
    # cuDNN and older PyTorch CPU kernels reject a non-contiguous hidden state ("hx is not contiguous"),
    # so the state carried from the last row into the text's tail must be made contiguous.
    from rnnlab.config import ModelConfig
    from rnnlab.models.rnn_lm import RNNLanguageModel
    from rnnlab.training.metrics import evaluate_ids

    model = RNNLanguageModel(ModelConfig(vocab_size=7, hidden_size=8, embedding_size=4, layers=2))
    seen = []
    original = model.rnn.forward

    def checked(x, state=None):
        seen.append(state is None or all(s.is_contiguous() for s in state))
        return original(x, state)

    model.rnn.forward = checked
    ids = torch.randint(0, 7, (3 * 1024 + 50,))  # three rows and a tail
    evaluate_ids(model, ids, 1.0, torch.device("cpu"), batch_size=3, seq_len=256)
    assert len(seen) > 4 and all(seen)


def test_a_run_prints_its_settings_first(tmp_path, small_corpus):
    lines = []
    with single_thread():
        rnnlab.train(small_corpus, tmp_path / "m", hidden_size=16, layers=1, embedding_size=8, seq_len=16,
                     batch_size=4, max_steps=1, eval_every=1, sample_every=0, progress=False, ar=1.0,
                     locked_dropout=True, log=lines.append)
    first = lines[0]
    for needle in ("training lstm 1x16", "embedding 8", "dropout 0.4 (locked)", "ar 1.0", "batch 4 x seq-len 16",
                   "adamw lr 0.003 cosine", "fp32", "max-steps 1"):
        assert needle in first, (needle, first)


def test_a_small_corpus_gets_the_awd_regularisers_unless_told_otherwise(tmp_path, small_corpus, capsys):
    """Under api.SMALL_CORPUS_CHARS_PER_PARAMETER the unset regularisers take the small-corpus values;
    given ones win. 25k training characters for a 2x128 model (~0.5M parameters) is a small corpus."""
    from rnnlab import api

    big = ["--hidden", "128", "--layers", "2"]
    out = tmp_path / "small"
    assert main(tiny_train_args(small_corpus, out, "--max-steps", "2", *big)) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert "dropout 0.4 (locked), embed-dropout 0.1, ar 2.0, tar 1.0" in first, first
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["locked_dropout"] is True and saved["model"]["embed_dropout"] == 0.1
    assert (saved["train"]["ar"], saved["train"]["tar"]) == (2.0, 1.0)
    chars = saved["corpus"]["train_chars"]
    assert chars < api.SMALL_CORPUS_CHARS_PER_PARAMETER * rnnlab.load(out).info()["parameters"]["total"]

    plain = tmp_path / "plain"
    assert main(tiny_train_args(small_corpus, plain, "--max-steps", "2", *big, "--no-locked-dropout", "--ar", "0",
                                "--embed-dropout", "0")) == 0
    saved = json.loads((plain / "config.json").read_text())
    assert saved["model"]["locked_dropout"] is False and saved["model"]["embed_dropout"] == 0.0
    assert (saved["train"]["ar"], saved["train"]["tar"]) == (0.0, 1.0)  # --tar was left to the default

    # The window objective has no per-step outputs for AR/TAR: it keeps the neutral values, no error.
    window = tmp_path / "window"
    assert main(tiny_train_args(small_corpus, window, "--max-steps", "2", *big, "--objective", "window")) == 0
    saved = json.loads((window / "config.json").read_text())
    assert (saved["train"]["ar"], saved["train"]["tar"], saved["model"]["locked_dropout"]) == (0.0, 0.0, False)

    # The suite's tiny 1x48 model has more text than 0.15 characters per parameter: plain dropout.
    tiny = tmp_path / "tiny"
    assert main(tiny_train_args(small_corpus, tiny, "--max-steps", "2")) == 0
    saved = json.loads((tiny / "config.json").read_text())
    assert (saved["train"]["ar"], saved["model"]["locked_dropout"]) == (0.0, False)


def test_the_threshold_is_characters_per_parameter():
    from rnnlab import api
    from rnnlab.config import ModelConfig, TrainConfig

    model, train = ModelConfig(vocab_size=10), TrainConfig()
    per = api.SMALL_CORPUS_CHARS_PER_PARAMETER
    assert api._corpus_defaults(model, train, int(per * 1_000_000), 1_000_000, {}) == (model, train)
    small_model, small_train = api._corpus_defaults(model, train.replace(ar=0.5), int(per * 1_000_000) - 1,
                                                    1_000_000, {"ar": 0.5})
    assert small_model.locked_dropout and small_model.embed_dropout == 0.1
    assert (small_train.ar, small_train.tar) == (0.5, 1.0)
