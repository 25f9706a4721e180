"""Property tests on what rnnlab reads back from disk and from users: a mutated `config.json` either loads a
model that generates or gives one line and exit 2; the word tokenizer round-trips arbitrary Unicode. Seeded
and bounded like test_fuzz_cli.py (profile "ci"; `--hypothesis-profile long` for more examples)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_fuzz_cli import assert_handled, run

from rnnlab.data.tokenizers import WordTokenizer

JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([2**63, -(2**63), 10**6, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False, width=32), st.text(max_size=6),
    st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))

SECTIONS = {"model": ["vocab_size", "cell", "layers", "hidden_size", "embedding_size", "dropout", "weight_drop",
                      "tie_weights", "input", "bidirectional", "cell_impl", "output"],
            "data": ["level", "lower", "max_vocab", "min_count", "vocab_size", "keras_compat", "split"],
            "train": ["objective", "seq_len", "batch_size", "window", "stride", "lr", "seed", "device"]}
KEYS = st.sampled_from([(section, key) for section, keys in SECTIONS.items() for key in keys]
                       + [("format_version", None), ("model", None), ("train", None)])


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(where=KEYS, value=JSON_VALUES, delete=st.booleans())
# The hand edits of the hardening issue, always tried.
@example(where=("model", "hidden_size"), value=16.0, delete=False)
@example(where=("model", "layers"), value=2.5, delete=False)
@example(where=("model", "layers"), value=-1, delete=False)
@example(where=("model", "hidden_size"), value=1_000_000, delete=False)
@example(where=("model", "cell"), value="transformer", delete=False)
@example(where=("model", "tie_weights"), value="yes", delete=False)
@example(where=("model", "vocab_size"), value=None, delete=True)
def test_any_config_mutation_loads_or_fails_in_one_line(char_model_dir, where, value, delete):
    section, key = where
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        shutil.copytree(char_model_dir, model)
        config = json.loads((model / "config.json").read_text())
        if key is None:
            config.pop(section) if delete else config.__setitem__(section, value)
        elif delete:
            config[section].pop(key)
        else:
            config[section][key] = value
        (model / "config.json").write_text(json.dumps(config))
        assert_handled(["info", str(model)])
        assert_handled(["generate", str(model), "--length", "3", "--seed", "1"])


def test_an_unchanged_config_still_generates(char_model_dir):
    """The harness can see success: the untouched copy generates with exit 0."""
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        shutil.copytree(char_model_dir, model)
        code, err = run(["generate", str(model), "--length", "3", "--seed", "1"])
        assert code == 0, err


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(max_size=60))
def test_word_round_trip_on_any_unicode(text):
    tok = WordTokenizer.train(text)
    ids = tok.encode(text, unknown="error")
    assert tok.decode(ids) == text
