"""Generation speed: rnnlab's stateful sampler against a bare loop of nn.LSTM steps, same shapes.

    python benchmarks/generate_speed.py [--tokens 2000] [--rounds 5]

A char model (the Jungle Book's characters) with a 2-layer LSTM of 256 on the CPU, sampling with
temperature 0.8 and top-p 0.9. `ms_per_token_batch1`: one sample; `tokens_per_s_batch64`: 64 samples
in one batch; `ratio_batch64`: rnnlab's tokens/s over the bare loop's (LSTM steps only: no embedding,
decoder, sampling or text) at batch 64. For scale, the tutorials' way re-runs the whole window for every
character; `ms_per_token_window_rerun` measures that with the same network and a 100-character window.
Each figure is the best of `--rounds` rounds, rnnlab and the bare loop taking turns within a round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit  # noqa: E402

from rnnlab.api import LanguageModel  # noqa: E402
from rnnlab.config import ModelConfig  # noqa: E402
from rnnlab.data.corpus import read_corpus  # noqa: E402
from rnnlab.data.tokenizers import CharTokenizer  # noqa: E402
from rnnlab.models.rnn_lm import RNNLanguageModel  # noqa: E402
from rnnlab.training.seeding import pick_device  # noqa: E402

HIDDEN, LAYERS, EMBED = 256, 2, 128


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_loop_seconds(batch: int, tokens: int) -> float:
    lstm = torch.nn.LSTM(EMBED, HIDDEN, LAYERS, batch_first=True).eval()
    x = torch.randn(batch, 1, EMBED)

    def run():
        state = None
        with torch.inference_mode():
            for _ in range(tokens):
                _, state = lstm(x, state)

    run()
    return timed(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    pick_device("cpu")
    text = read_corpus(SHARED_DATA / "jungle-book.txt")
    tokenizer = CharTokenizer.train(text)
    torch.manual_seed(0)
    model = RNNLanguageModel(ModelConfig(vocab_size=tokenizer.vocab_size, layers=LAYERS, hidden_size=HIDDEN,
                                         embedding_size=EMBED, dropout=0.0)).eval()
    lm = LanguageModel(model, tokenizer, {}, None, "cpu")
    options = dict(temperature=0.8, top_p=0.9, seed=0)
    n = args.tokens
    lm.sample("Mowgli", length=50, **options)  # warm-up
    n64 = max(200, n // 4)
    # Interleaved rounds, best of each: a shared machine's noise then hits both sides alike.
    batch1 = bare1 = batch64 = bare64 = float("inf")
    for _ in range(args.rounds):
        batch1 = min(batch1, timed(lambda: lm.sample("Mowgli", length=n, **options)))
        bare1 = min(bare1, bare_loop_seconds(1, n))
        batch64 = min(batch64, timed(lambda: lm.sample("Mowgli", length=n64, num_samples=64, **options)))
        bare64 = min(bare64, bare_loop_seconds(64, n64))

    window = torch.randint(0, tokenizer.vocab_size, (1, 100))

    def rerun():
        with torch.inference_mode():
            for _ in range(50):
                model(window)

    rerun_ms = min(timed(rerun) for _ in range(3)) / 50 * 1000
    result = {
        "ms_per_token_batch1": round(batch1 / n * 1000, 4),
        "bare_ms_per_token_batch1": round(bare1 / n * 1000, 4),
        "ratio_batch1": round(bare1 / batch1, 3),
        "tokens_per_s_batch64": round(64 * n64 / batch64),
        "bare_tokens_per_s_batch64": round(64 * n64 / bare64),
        "ratio_batch64": round(bare64 / batch64, 3),
        "ms_per_token_window_rerun": round(rerun_ms, 3),
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
    }
    emit(result)


if __name__ == "__main__":
    main()
