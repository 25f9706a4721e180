"""Does generation start where a text starts? "Mowgli" continued as a word, over 20 seeds.

    python benchmarks/start_of_text.py [--model DIR] [--prompt Mowgli] [--seeds 20]

For each seed, `rnnlab generate MODEL --prompt PROMPT --length 2 --seed S` (the API call it makes); a
sample "continues the word" when its first generated character is a letter. The Jungle Book follows
"Mowgli" with a letter once in 222 times, so a model that reads the prompt as the start of a text (the
start-of-text context first, as it was trained) should almost never do it. Also printed: the model's
probability of a letter right after the prompt, with the start-of-text context and without it (the
zero state straight into the prompt, as rnnlab 0.1 generated).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

import rnnlab  # noqa: E402


def letter_probability(lm, ids: list[int]) -> float:
    with torch.inference_mode():
        logits, _ = lm.model(torch.tensor([ids]))
    probs = torch.softmax(logits[0, -1].float(), -1)
    letters = [i for i in range(lm.tokenizer.vocab_size) if lm.tokenizer.token_text(i).isalpha()]
    return float(probs[letters].sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="a model directory (default: the packaged model)")
    parser.add_argument("--prompt", default="Mowgli")
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    lm = rnnlab.load(args.model)
    continued = []
    for seed in range(args.seeds):
        text = lm.generate(args.prompt, length=2, seed=seed)
        continued.append(text[len(args.prompt):][:1].isalpha())
        print(f"seed {seed:2d}: {text!r}", file=sys.stderr)
    prompt_ids = lm.tokenizer.encode(args.prompt)
    emit({"prompt": args.prompt, "seeds": args.seeds, "continued_as_word": sum(continued),
          "p_letter_with_start": round(letter_probability(lm, lm.tokenizer.start_ids() + prompt_ids), 4),
          "p_letter_zero_state": round(letter_probability(lm, prompt_ids), 4),
          "model": str(args.model or "default")})


if __name__ == "__main__":
    main()
