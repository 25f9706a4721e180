"""Resuming and overwriting a run, as a user meets them: the same flags are accepted on --resume, a changed
one is refused by name, another corpus is refused, and an overwritten model survives a run that fails
before its first checkpoint."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_train_args
from test_bad_input import assert_one_line_error, run_cli

from rnnlab.training import checkpoint as ckpt

FIRST = ("--max-steps", "4", "--eval-every", "2", "--seed", "3", "--seq-len", "32", "--cell", "gru")


def _corpus(tmp_path, text="The bear and the panther taught the cub the law of the jungle.\n"):
    path = tmp_path / "corpus.txt"
    path.write_text(text * 60)
    return path


@pytest.fixture
def interrupted_run(tmp_path):
    corpus, out = _corpus(tmp_path), tmp_path / "model"
    result = run_cli(*tiny_train_args(corpus, out, *FIRST))
    assert result.returncode == 0, result.stderr
    return corpus, out


def test_resume_accepts_the_runs_own_settings(interrupted_run):
    corpus, out = interrupted_run
    result = run_cli(*tiny_train_args(corpus, out, *FIRST, "--resume", "--max-steps", "6"))
    assert result.returncode == 0, result.stderr
    assert json.loads((out / ckpt.SUMMARY).read_text())["steps"] == 6


def test_resume_names_each_changed_flag_with_both_values(interrupted_run):
    corpus, out = interrupted_run
    args = [a if a != "gru" else "lstm" for a in FIRST]
    args[args.index("--seq-len") + 1] = "64"
    line = assert_one_line_error(run_cli(*tiny_train_args(corpus, out, *args, "--resume")),
                                 "--seq-len: saved 32, given 64", "--cell: saved 'gru', given 'lstm'")
    assert "--seed" not in line and "--max-steps" not in line  # unchanged or resumable: not named
    assert json.loads((out / ckpt.SUMMARY).read_text())["steps"] == 4  # nothing was touched


def test_resume_refuses_another_corpus(interrupted_run, tmp_path):
    _corpus_path, out = interrupted_run
    other = tmp_path / "other"
    other.mkdir()
    weights = (out / ckpt.WEIGHTS).read_bytes()
    result = run_cli(*tiny_train_args(_corpus(other, "Quite another story about ships at sea.\n"), out,
                                      *FIRST, "--resume", "--max-steps", "6"))
    assert_one_line_error(result, "cannot resume", "training text differs")
    assert (out / ckpt.WEIGHTS).read_bytes() == weights


def test_the_fingerprint_is_stored_with_the_run(interrupted_run):
    _corpus_path, out = interrupted_run
    corpus = json.loads((out / ckpt.CONFIG).read_text())["corpus"]
    assert len(corpus["train_sha256"]) == 64 and corpus["train_chars"] > 0


def test_an_overwritten_model_survives_a_run_that_fails_before_its_first_checkpoint(interrupted_run,
                                                                                     monkeypatch):
    from rnnlab import api
    from rnnlab.training import loop

    corpus, out = interrupted_run
    before = {name: (out / name).read_bytes() for name in
              (ckpt.CONFIG, ckpt.TOKENIZER, ckpt.WEIGHTS, ckpt.TRAINING_STATE, ckpt.METRICS, ckpt.SUMMARY)}

    def failing_step(*_args, **_kwargs):
        raise RuntimeError("the machine ran out of memory in the first step")

    monkeypatch.setattr(loop, "batch_loss", failing_step)
    with pytest.raises(RuntimeError, match="first step"):
        api.train(corpus, out, overwrite=True, hidden_size=32, layers=2, seq_len=16, batch_size=4, max_steps=4,
                  seed=9, progress=False)
    assert {name: (out / name).read_bytes() for name in before} == before
    monkeypatch.undo()
    # The next overwrite that does train replaces the old run's files with its own.
    api.train(corpus, out, overwrite=True, hidden_size=32, layers=1, embedding_size=8, seq_len=16, batch_size=4,
              max_steps=2, eval_every=2, seed=9, progress=False)
    assert json.loads((out / ckpt.CONFIG).read_text())["model"]["hidden_size"] == 32
    assert [r["step"] for r in ckpt.read_metrics(out)] == [2]


def _tamper_training_state(out, change) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = out / ckpt.TRAINING_STATE
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
    tensors = load_file(path)
    metadata = change(tensors, metadata)
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=metadata)


def _replace(key, cut):
    def change(tensors, metadata):
        tensors[key] = cut(tensors[key])
        return metadata
    return change


def _drop(key):
    def change(tensors, metadata):
        del tensors[key]
        return metadata
    return change


@pytest.mark.parametrize("what, change, needle", [
    ("no metadata", lambda t, m: None, "no 'state'"),
    ("no RNG state", _drop("rng.torch"), "no 'rng.torch'"),
    ("optimiser moments of the wrong shape", _replace("optim.0.exp_avg", lambda v: v[:1]), "optim.0.exp_avg is"),
    ("a carried state of the wrong width", _replace("carry.0", lambda v: v[..., :3]), "the carried state is"),
    ("a carried state of another batch", _replace("carry.0", lambda v: v[:, :1]), "carries the state of 1 rows"),
])
def test_a_damaged_training_state_is_a_one_line_refusal_to_resume(interrupted_run, what, change, needle):
    corpus, out = interrupted_run
    _tamper_training_state(out, change)
    assert_one_line_error(run_cli(*tiny_train_args(corpus, out, *FIRST, "--resume", "--max-steps", "6")),
                          "cannot resume", needle)


def test_info_on_a_summary_that_is_not_json_is_one_line(interrupted_run):
    _, out = interrupted_run
    for text, needle in (("{not json", "is not valid JSON"), ("[1, 2]", "is not a JSON object")):
        (out / ckpt.SUMMARY).write_text(text)
        assert_one_line_error(run_cli("info", out), "summary.json", needle)
