"""Interactive generation: command parsing, the carried state, the words mode, and the real terminal loop.

The terminal tests run `rnnlab generate MODEL --interactive` in a pseudo-terminal with pexpect, on a tiny
character model trained once per session (a few seconds on one thread).
"""

from __future__ import annotations

import ast
import io
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
import torch
from conftest import sigint_as_a_terminal_sends_it
from conftest import single_thread as _single_thread

import rnnlab
from rnnlab.config import ModelConfig, SampleConfig
from rnnlab.errors import ConfigError, VocabularyError
from rnnlab.generation.decoder import prime
from rnnlab.interactive import Session, apply_setting, parse_line, run_interactive
from rnnlab.models.rnn_lm import RNNLanguageModel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    with _single_thread():
        yield


@pytest.fixture
def char_lm(char_model_dir):
    return rnnlab.load(char_model_dir)


def story_ids(lm, session) -> list[int]:
    """The story's tokens: what the session fed after the start-of-text context it begins with."""
    start = lm.tokenizer.start_ids()
    assert session.context[:len(start)] == start
    return session.context[len(start):]


def _fresh_logits(lm, ids: list[int]) -> torch.Tensor:
    """The next-token logits after running `ids` from a zero state in one go."""
    with torch.inference_mode():
        logits, _ = prime(lm.model, ids, 1, lm.device)
    return logits


# ------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize("line, parsed", [
    ("The wolf\n", ("text", "The wolf")),
    ("", ("text", "")),
    ("\n", ("text", "")),
    ("  indented text", ("text", "  indented text")),
    ("//etc/passwd is a path", ("text", "/etc/passwd is a path")),
    ("/temperature 0.7\n", ("temperature", "0.7")),
    ("/TOP-K   5  ", ("top-k", "5")),
    ("/top-p 0.9", ("top-p", "0.9")),
    ("/length 300", ("length", "300")),
    ("/reset", ("reset", "")),
    ("/q", ("quit", "")),
    ("/quit", ("quit", "")),
    ("/done", ("done", "")),
    ("/more", ("more", "")),
    ("/seed off", ("seed", "off")),
])
def test_parse_line(line, parsed):
    assert parse_line(line) == parsed


@pytest.mark.parametrize("line, message", [
    ("/tempreature 0.7", "unknown command /tempreature"),
    ("/temperature", "/temperature needs a number >= 0"),
    ("/reset now", "/reset takes no value"),
    ("/length", "/length needs a whole number"),
])
def test_parse_line_rejects_bad_commands(line, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_line(line)


def test_apply_setting_parses_and_validates():
    config = SampleConfig()
    assert apply_setting(config, "temperature", "0.7").temperature == 0.7
    assert apply_setting(config, "top-k", "3").top_k == 3
    assert apply_setting(config, "top-p", "0.5").top_p == 0.5
    assert apply_setting(config, "length", "300").length == 300
    assert apply_setting(config, "seed", "42").seed == 42
    assert apply_setting(config.replace(seed=1), "seed", "off").seed is None
    assert config.temperature == 0.8  # settings are values: the old one is untouched


@pytest.mark.parametrize("name, value, message", [
    ("temperature", "warm", "/temperature needs a number >= 0 (got 'warm')"),
    ("temperature", "-1", "/temperature must be >= 0"),
    ("temperature", "nan", "/temperature needs a number >= 0"),
    ("top-p", "2", "/top-p must be in (0, 1]"),
    ("top-k", "-3", "/top-k must be >= 0"),
    ("length", "1.5", "/length needs a whole number >= 0 (got '1.5')"),
    ("seed", "x", "/seed needs a whole number or 'off'"),
])
def test_apply_setting_errors_name_the_command(name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_setting(SampleConfig(), name, value)


# ------------------------------------------------------------------------------------ carried state


def test_typed_lines_continue_from_the_carried_state(char_lm):
    session = Session(char_lm, SampleConfig(length=25, seed=1))
    assert session.add_text("The wolf") == "The wolf"
    generated = session.generate()
    assert len(generated) == 25
    added = session.add_text("Mowgli")
    # The typed line is joined to the story with a space, unless the story already ends in one.
    assert added == ("Mowgli" if generated[-1].isspace() else " Mowgli")
    assert session.text == "The wolf" + generated + added
    assert char_lm.tokenizer.decode(story_ids(char_lm, session)) == session.text
    # Feeding turn by turn on top of the carried state equals reading the whole story at once.
    assert torch.allclose(session.logits, _fresh_logits(char_lm, session.context), atol=1e-5)


def test_typed_lines_are_joined_with_a_space_where_neither_side_has_one(char_lm):
    session = Session(char_lm, SampleConfig(length=0))
    pieces = [session.add_text(t) for t in ("The wolf", "ran", ", said", " Akela", "\nthen", "he")]
    assert pieces == ["The wolf", " ran", ", said", " Akela", "\nthen", " he"]
    assert session.text == "The wolf ran, said Akela\nthen he"
    assert session.generate() == ""  # /length 0: the line only moves the state on
    assert torch.allclose(session.logits, _fresh_logits(char_lm, session.context), atol=1e-5)


def test_reset_gives_a_fresh_state(char_lm):
    session = Session(char_lm, SampleConfig(length=30, seed=7))
    session.add_text("The wolf")
    first = session.generate()
    session.add_text("and")
    session.generate()
    session.reset()
    assert session.text == "" and session.state is None and session.context == []
    session.set_config(session.config)  # the same seed again
    session.add_text("The wolf")
    assert session.generate() == first
    assert torch.allclose(session.logits, _fresh_logits(char_lm, session.context), atol=1e-5)


def test_an_empty_first_line_starts_a_paragraph(char_lm):
    session = Session(char_lm, SampleConfig(length=10, seed=0))
    text = session.generate()
    assert len(text) == 10 and session.text == text
    assert session.context[0] == char_lm.tokenizer.encode("\n")[0]  # the start token, not shown


def test_a_stop_string_ends_the_turn_and_the_state_has_read_it(char_lm):
    session = Session(char_lm, SampleConfig(length=200, stop="e", seed=3))
    session.add_text("The wolf")
    text = session.generate()
    assert text.endswith("e") and text.count("e") == 1
    assert torch.allclose(session.logits, _fresh_logits(char_lm, session.context), atol=1e-5)
    assert char_lm.tokenizer.decode(story_ids(char_lm, session)) == session.text


def test_unknown_characters_are_a_one_line_error(char_lm):
    session = Session(char_lm, SampleConfig())
    with pytest.raises(VocabularyError, match="input has characters the model never saw: '€'"):
        session.add_text("a €")
    assert session.text == "" and session.state is None  # nothing half-added


# ---------------------------------------------------------------------------------------- words mode


def test_char_model_offers_whole_next_words_with_their_probabilities(char_lm):
    session = Session(char_lm, SampleConfig())
    session.add_text("The wolf said")
    offered = session.candidates(4)
    assert len(offered) == 4
    probabilities = [c.probability for c in offered]
    assert probabilities == sorted(probabilities, reverse=True)
    assert len({c.text for c in offered}) == 4
    space = [i for i in range(1, char_lm.tokenizer.vocab_size) if char_lm.tokenizer.token_text(i).isspace()]
    for c in offered:
        word = c.text.lstrip()
        assert word and not any(ch.isspace() for ch in word)  # whitespace, then one word
        assert char_lm.tokenizer.decode(c.ids) == c.text
        # Its probability is the model's: every character in turn, then any whitespace after it.
        probs = torch.softmax(_fresh_logits(char_lm, session.context).float(), -1)[0]
        expected = 1.0
        for k, token in enumerate(c.ids):
            expected *= float(probs[token])
            logits = _fresh_logits(char_lm, session.context + list(c.ids[:k + 1]))
            probs = torch.softmax(logits.float(), -1)[0]
        expected *= float(probs[space].sum())
        assert c.probability == pytest.approx(expected, rel=1e-4)
    # Picking one appends its characters and advances the state by them.
    before = session.text
    assert session.add_ids(offered[1].ids) == offered[1].text
    assert session.text == before + offered[1].text
    assert torch.allclose(session.logits, _fresh_logits(char_lm, session.context), atol=1e-5)


def test_char_model_samples_one_word_on_more(char_lm):
    session = Session(char_lm, SampleConfig(seed=5, temperature=1.0))
    session.add_text("The wolf")
    for _ in range(3):
        before = session.text
        word = session.sample_word()
        assert session.text == before + word
        assert word.strip() and not any(ch.isspace() for ch in word.lstrip())
    assert torch.allclose(session.logits, _fresh_logits(char_lm, session.context), atol=1e-5)


def test_word_model_offers_its_most_likely_next_tokens(word_model_dir):
    lm = rnnlab.load(word_model_dir)
    session = Session(lm, SampleConfig())
    session.add_text("The wolf")
    offered = session.candidates(5)
    probs = torch.softmax(session.logits.float(), -1)[0]
    probs[lm.banned_ids] = 0
    top = torch.topk(probs, 5)
    assert [c.ids[0] for c in offered] == top.indices.tolist()
    assert [c.probability for c in offered] == pytest.approx(top.values.tolist(), rel=1e-4)
    story = session.text
    session.add_ids(offered[0].ids)
    assert session.text == lm.tokenizer.decode(story_ids(lm, session))
    assert session.text.startswith(story)


# ------------------------------------------------------------------------------ the loop (in process)


def _run(lm, lines: str, options=None, words=False) -> tuple[int, str]:
    out = io.StringIO()
    code = run_interactive(lm, options or {"length": 20, "seed": 1}, words=words, stdin=io.StringIO(lines),
                           stdout=out)
    return code, out.getvalue()


def test_loop_keeps_going_after_bad_values_and_ends_at_end_of_input(char_lm):
    code, out = _run(char_lm, "/temperature hot\n/top-p 0\n/settings\n/temperature 0.5\n/top-k 3\n"
                              "/bogus\n/done\n/choices 0\n")
    assert code == 0
    errors = [line for line in out.splitlines() if "error:" in line]
    assert [e.split("error: ")[1] for e in errors] == [
        "/temperature needs a number >= 0 (got 'hot')",
        "/top-p must be in (0, 1] (got 0.0)",
        "unknown command /bogus (type /help for the list)",
        "/done leaves /words mode, which is not on",
        "/choices needs a whole number >= 1 (got '0')",
    ]
    assert "length 20 · temperature 0.8 · top-k 0 (off) · top-p 1 · seed 1 · choices 5" in out
    assert "temperature 0.5 · top-k 3 · top-p 1" in out


def test_quit_stops_reading(char_lm):
    code, out = _run(char_lm, "/quit\nThe wolf\n")
    assert code == 0 and "The wolf" not in out


def test_ctrl_c_ends_cleanly(char_lm):
    class Interrupting(io.StringIO):
        def readline(self, *args):
            raise KeyboardInterrupt

    out = io.StringIO()
    assert run_interactive(char_lm, {}, stdin=Interrupting(), stdout=out) == 0


def test_same_seed_same_session(char_lm):
    script = "The wolf\n\nMowgli\n"
    assert _run(char_lm, script)[1] == _run(char_lm, script)[1]
    assert _run(char_lm, script)[1] != _run(char_lm, script, {"length": 20, "seed": 2})[1]


def test_loop_refuses_settings_it_cannot_honour(char_lm):
    with pytest.raises(ConfigError, match="--num-samples does not apply to --interactive"):
        _run(char_lm, "", {"num_samples": 2})
    window = rnnlab.api.LanguageModel(RNNLanguageModel(ModelConfig(vocab_size=5, output="last")),
                                      char_lm.tokenizer, {}, None)
    with pytest.raises(ConfigError, match="--objective sequence"):
        _run(window, "")


# -------------------------------------------------------------------------- the real terminal (pty)


def _spawn(model_dir: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"}
    return pexpect.spawn(sys.executable, ["-m", "rnnlab", "generate", str(model_dir), "--interactive", *args],
                         env=env, encoding="utf-8", timeout=60, dimensions=(40, 200),
                         preexec_fn=sigint_as_a_terminal_sends_it)


def test_terminal_session_continues_the_story_and_ends_on_ctrl_c(char_model_dir, char_lm):
    child = _spawn(char_model_dir, "--length", "30", "--seed", "1")
    child.expect("/help for commands")
    child.expect_exact("> ")
    child.sendline("The wolf")
    # The terminal echoes the line; then the story: the typed words and 30 characters of the model's.
    child.expect(r"The wolf\r\n(The wolf.*?)\r\n> ")
    first = child.match.group(1).replace("\r\n", "\n")
    child.sendline("")
    child.expect(r"\r\n(.*?)\r\n> ")
    second = child.match.group(1).replace("\r\n", "\n")
    assert len(first) == len("The wolf") + 30 and len(second) == 30
    # The same session run in process (same model, options and seed) writes the same story.
    _, out = _run(char_lm, "The wolf\n\n", {"length": 30, "seed": 1})
    assert first + "\n> " + second in out
    child.sendline("/temperature abc")
    child.expect_exact("error: /temperature needs a number >= 0 (got 'abc')")
    child.expect_exact("> ")
    child.sendline("/temperature 0.5")
    child.expect_exact("temperature 0.5")
    child.sendline("/length 5")
    child.expect_exact("length 5 ·")
    child.sendline("/reset")
    child.expect_exact("(new story: fresh state)")
    child.sendline("/help")
    child.expect_exact("/top-p P")
    child.expect_exact("> ")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_terminal_words_mode_picks_word_by_word_and_ends_on_ctrl_d(char_model_dir):
    child = _spawn(char_model_dir, "--words", "--top-k", "3", "--seed", "2")
    child.expect_exact("/done: back")
    child.sendline("The wolf")
    child.expect(r"» The wolf\r\n")
    offered = []
    for n in (1, 2, 3):
        child.expect(rf"\s{n}  ('.*?'|\".*?\")\s+\d+\.\d%")
        offered.append(ast.literal_eval(child.match.group(1)))
    child.expect_exact("words> ")
    child.sendline("2")  # append the second suggestion
    child.expect(r"» ([^\r\n]*)\r\n")
    story = "The wolf" + offered[1]
    assert child.match.group(1) == story.replace("\n", "⏎")
    child.expect_exact("words> ")
    child.sendline("4")
    child.expect_exact("error: pick a number from 1 to 3")
    child.expect_exact("words> ")
    child.sendline("")  # the model picks the next word itself
    child.expect(r"» ([^\r\n]*)\r\n")
    picked = child.match.group(1)
    assert picked.startswith(story) and len(picked.strip()) > len(story)
    child.expect_exact("words> ")
    child.sendline("and the bear")
    child.expect(r"» ([^\r\n]*)\r\n")
    assert child.match.group(1) == picked + " and the bear"
    child.expect_exact("words> ")
    child.sendline("/done")
    child.expect_exact("(free generation")
    child.expect_exact("> ")
    child.sendline("/words")
    child.expect_exact("/done: back")
    child.expect_exact("words> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
