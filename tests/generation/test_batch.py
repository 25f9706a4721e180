"""Continuous batching (generation/batch.py): rows join and leave a running decode with their own
settings, and a seeded row writes the same tokens alone, batched, or through `generate`."""

import pytest

import rnnlab
from rnnlab.errors import ConfigError
from rnnlab.generation.batch import ContinuousDecoder, RowSettings


def _run(decoder: ContinuousDecoder, lengths: dict) -> dict:
    """Step until every row in `lengths` has its number of tokens; rows leave as they finish."""
    out = {key: [] for key in lengths}
    while decoder.rows or decoder._joining:
        for token in decoder.step():
            out[token.key].append(token.id)
            if len(out[token.key]) == lengths[token.key]:
                decoder.remove(token.key)
    return out


@pytest.fixture(scope="module")
def lm(char_model_dir):
    return rnnlab.load(char_model_dir)


def test_a_seeded_row_writes_the_same_tokens_alone_batched_and_through_generate(lm):
    ids, _ = lm._prompt_ids("Mowgli", "error")
    settings = RowSettings(temperature=0.8, top_p=0.9, seed=7)
    alone = ContinuousDecoder(lm.model, banned=lm.banned_ids)
    alone.add("a", ids, settings)
    solo = _run(alone, {"a": 40})["a"]

    busy = ContinuousDecoder(lm.model, banned=lm.banned_ids)
    busy.add("x", lm._prompt_ids("The wolf", "error")[0], RowSettings(temperature=1.2, top_k=5))
    busy.add("y", ids, RowSettings(temperature=0, frequency_penalty=1.0))
    for _ in range(5):  # the seeded row joins a batch already running
        busy.step()
    busy.add("a", ids, settings)
    busy.add("z", ids, RowSettings(temperature=0.5, presence_penalty=0.5, seed=8))
    batched = _run(busy, {"a": 40, "x": 60, "y": 10, "z": 3})
    assert batched["a"] == solo

    text = lm.generate("Mowgli", length=40, temperature=0.8, top_p=0.9, seed=7)
    assert lm.tokenizer.decode(solo) == text[len("Mowgli"):]


def test_rows_leave_and_the_others_go_on_unchanged(lm):
    ids, _ = lm._prompt_ids("Bagheera", "error")
    decoder = ContinuousDecoder(lm.model, banned=lm.banned_ids)
    decoder.add("long", ids, RowSettings(seed=1))
    decoder.add("short", ids, RowSettings(seed=2))
    out = _run(decoder, {"long": 30, "short": 4})
    assert len(out["short"]) == 4 and len(decoder) == 0
    alone = ContinuousDecoder(lm.model, banned=lm.banned_ids)
    alone.add("long", ids, RowSettings(seed=1))
    assert _run(alone, {"long": 30})["long"] == out["long"]


def test_greedy_and_penalties_per_row(lm):
    ids, _ = lm._prompt_ids("the", "error")
    decoder = ContinuousDecoder(lm.model, banned=lm.banned_ids)
    decoder.add("plain", ids, RowSettings(temperature=0))
    decoder.add("penalised", ids, RowSettings(temperature=0, frequency_penalty=2.0))
    out = _run(decoder, {"plain": 60, "penalised": 60})
    assert lm.tokenizer.decode(out["plain"]) == lm.generate("the", length=60, temperature=0)[3:]
    # A strong frequency penalty spreads the row over more distinct characters than greedy repetition.
    assert len(set(out["penalised"])) > len(set(out["plain"]))


def test_logprobs_report_the_top_alternatives(lm):
    ids, _ = lm._prompt_ids("the", "error")
    decoder = ContinuousDecoder(lm.model)
    decoder.add("r", ids, RowSettings(temperature=0, logprobs=3))
    (token,) = decoder.step()
    assert len(token.top) == 3 and token.top[0] == (token.id, pytest.approx(token.logprob))
    assert token.top[0][1] >= token.top[1][1] >= token.top[2][1]


def test_bad_settings_name_the_parameter():
    with pytest.raises(ConfigError, match="--top-p"):
        RowSettings(top_p=1.5)
    with pytest.raises(ConfigError, match="presence_penalty"):
        RowSettings(presence_penalty=9)
