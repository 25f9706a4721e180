"""Every example in examples/ runs in its --quick form and prints what its docstring promises."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, tmp_path: Path, *extra: str) -> str:
    # One thread: these models are tiny, and the CI machine is shared.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", "--out", str(tmp_path / "model"),
                             *extra], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "model" / "model.safetensors").is_file()
    return result.stdout


def candidates(line: str) -> list[tuple[str, float]]:
    """'after 'x': word 0.97, other 0.02' -> [('word', 0.97), ('other', 0.02)]"""
    return [(w, float(p)) for w, p in (item.rsplit(" ", 1) for item in line.split(": ", 1)[1].split(", "))]


def test_every_example_has_a_quick_mode_and_a_test():
    names = sorted(p.name for p in EXAMPLES.glob("*.py") if p.name != "sum_of_two.py")
    assert names == sorted(["next_word_hello.py", "next_word_prefixes.py", "poem_chars.py",
                            "jungle_book_words.py"])
    for name in names:
        assert "--quick" in (EXAMPLES / name).read_text()


def test_next_word_hello(tmp_path):
    out = run_example("next_word_hello.py", tmp_path).splitlines()
    assert out[0] == ("word_index: {'hello': 1, 'world': 2, 'this': 3, 'is': 4, 'a': 5, 'simple': 6, "
                      "'lstm': 7, 'example': 8}")
    after = {line.split("'")[1]: candidates(line) for line in out if line.startswith("after ")}
    assert [top[0][0] for top in after.values()] == ["this", "simple", "example"]
    assert all(top[0][1] > 0.5 for top in after.values())
    assert out[-1] == "greedy from 'hello world': hello world this is a simple lstm example"


def test_next_word_prefixes(tmp_path):
    out = run_example("next_word_prefixes.py", tmp_path).splitlines()
    assert out[0] == "17 words, vocabulary 12 (0 is padding); 13 prefix samples"
    love = candidates(next(line for line in out if line.startswith("after 'I love'")))
    # Two sentences continue "I love": machine and deep, about half each.
    assert {love[0][0], love[1][0]} == {"machine", "deep"}
    assert 0.3 < love[1][1] <= love[0][1] < 0.7
    assert candidates(next(line for line in out if line.startswith("after 'I enjoy'")))[0][0] == "natural"
    assert out[-1] == "greedy from 'I enjoy': I enjoy natural language processing"


def test_poem_chars(tmp_path):
    out = run_example("poem_chars.py", tmp_path)
    vocab = int(re.search(r"vocabulary (\d+) characters", out).group(1))
    first, best = map(float, re.search(r"bits per character ([\d.]+) after epoch 1, best ([\d.]+)", out).groups())
    assert best < first < math.log2(vocab) + 0.1 and best < 0.75 * math.log2(vocab)
    sections = re.split(r"^--- temperature ([\d.]+) ---$", out, flags=re.M)
    assert sections[1::2] == ["0.5", "1.0", "1.5"]
    samples = [s.strip("\n") for s in sections[2::2]]
    assert all(s.startswith("Two roads") and len(s) == len("Two roads") + 120 for s in samples)
    assert len(set(samples)) == 3
    # A fixed seed: the same samples again from the saved model.
    import rnnlab

    lm = rnnlab.load(tmp_path / "model")
    assert lm.generate("Two roads", length=120, temperature=1.0, seed=0) == samples[1]


def test_jungle_book_words(tmp_path, shared_data):
    out = run_example("jungle_book_words.py", tmp_path, "--data-dir", str(shared_data))
    lines = out.splitlines()
    assert re.match(r"vocabulary \d+ words; validation perplexity [\d.]+", lines[0])
    start = lines.index("next word after 'Mowgli was running in the':")
    probs = [float(line.split()[0]) for line in lines[start + 1:start + 6]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    sample = out.split("100 words (temperature 0.8, seed 0):\n", 1)[1]
    assert sample.startswith("Mowgli was running in the ")
    assert len(sample.split()) == 5 + 100  # Keras word tokens: one word each, joined by spaces
