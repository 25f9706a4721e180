"""Training throughput: rnnlab's whole step against the raw nn.LSTM forward+backward, same shapes.

    python benchmarks/train_throughput.py [--repeats 5] [--bf16] [--cells]

A char model (vocabulary 80) with a 2-layer LSTM of 256 and of 512, batch 64, sequence 128. rnnlab's
step is everything `rnnlab train` does per batch: embedding, LSTM, decoder, cross-entropy, backward,
gradient clipping, AdamW. The raw step is `nn.LSTM` forward + backward of a sum. Also reported: the
achieved GFLOP/s of rnnlab's step (LSTM matrix products only, forward x3 for backward) over the machine's
fp32 peak measured in the same run with a large `F.linear`. With --bf16, rnnlab's 2x256 step is also
timed under `--precision bf16` (autocast), as bf16_tokens_per_s_256 and bf16_speedup_256 (fp32 time
over bf16 time; below 1 means bf16 is slower, as on CPUs without native bf16 arithmetic) and
bf16_vs_raw_256 (the raw fp32 nn.LSTM step's time over rnnlab's bf16 step's); on a CPU without oneDNN's
bf16 kernels, where rnnlab refuses bf16, bf16_supported is false instead.

With --cells, rnnlab's whole step for each cell (lstm, mingru, minlstm) at the same parameter count (the
2x256 LSTM's; the min cells keep 2 blocks with their default MLP and take the hidden size whose count is
nearest), batch 32, at sequence lengths 64 and 256: cell_tokens_per_s_{cell}_{seq} and
cell_speedup_{cell}_{seq} (tokens/s over the LSTM's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time, emit  # noqa: E402

from rnnlab.config import ModelConfig, TrainConfig  # noqa: E402
from rnnlab.data.batching import Batch  # noqa: E402
from rnnlab.models.rnn_lm import RNNLanguageModel  # noqa: E402
from rnnlab.training import loop  # noqa: E402
from rnnlab.training.loop import batch_loss  # noqa: E402
from rnnlab.training.optim import make_optimizer  # noqa: E402
from rnnlab.training.seeding import pick_device  # noqa: E402

VOCAB, BATCH, SEQ, EMBED, LAYERS = 80, 64, 128, 128, 2


def lstm_flops_per_step(hidden: int) -> float:
    """Forward multiply-adds of the LSTM's matrices x2 (flops) x3 (backward costs about twice forward)."""
    per_token = sum(2 * 4 * hidden * ((EMBED if layer == 0 else hidden) + hidden) for layer in range(LAYERS))
    return 3.0 * per_token * BATCH * SEQ


def measure_peak(repeats: int) -> float:
    a = torch.randn(4096, 4096)
    w = torch.randn(4096, 4096)
    seconds = best_time(lambda: F.linear(a, w), repeats, warmup=2)
    return 2 * 4096**3 / seconds / 1e9


def rnnlab_step_time(hidden: int, repeats: int, precision: str = "fp32", cell: str = "lstm",
                     batch: int = BATCH, seq: int = SEQ) -> float:
    torch.manual_seed(0)
    model = RNNLanguageModel(_config(cell, hidden))
    train = TrainConfig(batch_size=batch, seq_len=seq, precision=precision)
    optimizer = make_optimizer(model.parameters(), train)
    ids = torch.randint(0, VOCAB, (batch, seq + 1))
    batch = Batch(ids[:, :-1], ids[:, 1:], carries_state=True)
    carry = [None]
    device = torch.device("cpu")

    def step():
        loss, carry[0], *_ = batch_loss(model, batch, carry[0], device, train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return best_time(step, repeats)


def _config(cell: str, hidden: int) -> ModelConfig:
    return ModelConfig(vocab_size=VOCAB, cell=cell, layers=LAYERS, hidden_size=hidden, embedding_size=EMBED,
                       dropout=0.0)


def parameters(cell: str, hidden: int) -> int:
    return sum(p.numel() for p in RNNLanguageModel(_config(cell, hidden)).parameters())


def matched_hidden(cell: str, target: int) -> int:
    """The hidden size (a multiple of 8) whose model has the parameter count nearest `target`."""
    return min(range(8, 2049, 8), key=lambda h: abs(parameters(cell, h) - target))


def compare_cells(repeats: int) -> dict:
    """Tokens/s of rnnlab's step for each cell at the 2x256 LSTM's parameter count, seq 64 and 256."""
    target = parameters("lstm", 256)
    out = {"cell_parameters_lstm": target}
    hidden = {"lstm": 256}
    for cell in ("mingru", "minlstm"):
        hidden[cell] = matched_hidden(cell, target)
        out[f"cell_hidden_{cell}"] = hidden[cell]
        out[f"cell_parameters_{cell}"] = parameters(cell, hidden[cell])
    for seq in (64, 256):
        times = {cell: [] for cell in hidden}
        for _ in range(2):  # interleaved, so that machine noise hits every cell alike
            for cell, h in hidden.items():
                times[cell].append(rnnlab_step_time(h, repeats, cell=cell, batch=32, seq=seq))
        for cell in hidden:
            rate = 32 * seq / min(times[cell])
            out[f"cell_tokens_per_s_{cell}_{seq}"] = round(rate)
            out[f"cell_speedup_{cell}_{seq}"] = round(min(times["lstm"]) / min(times[cell]), 3)
            print(f"seq {seq}: {cell} (hidden {hidden[cell]}) {rate:,.0f} tok/s", file=sys.stderr)
    return out


def raw_step_time(hidden: int, repeats: int) -> float:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(EMBED, hidden, LAYERS, batch_first=True)
    x = torch.randn(BATCH, SEQ, EMBED)

    def step():
        lstm.zero_grad(set_to_none=True)
        out, _ = lstm(x)
        out.sum().backward()

    return best_time(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bf16", action="store_true", help="also time the 2x256 step under --precision bf16")
    parser.add_argument("--cells", action="store_true",
                        help="also compare lstm, mingru and minlstm at equal parameters, seq 64 and 256")
    args = parser.parse_args()
    pick_device("cpu")
    peak = measure_peak(args.repeats)
    result = {"threads": torch.get_num_threads(), "peak_gflops": round(peak, 1)}
    for hidden in (256, 512):
        # Interleave so that machine noise hits both sides alike.
        raw = min(raw_step_time(hidden, args.repeats), raw_step_time(hidden, args.repeats))
        ours = min(rnnlab_step_time(hidden, args.repeats), rnnlab_step_time(hidden, args.repeats))
        tokens = BATCH * SEQ
        gflops = lstm_flops_per_step(hidden) / ours / 1e9
        raw_gflops = lstm_flops_per_step(hidden) / raw / 1e9
        print(f"hidden {hidden}: rnnlab {tokens / ours:,.0f} tok/s, raw nn.LSTM {tokens / raw:,.0f} tok/s, "
              f"rnnlab {gflops:.1f} GFLOP/s, raw {raw_gflops:.1f}, peak {peak:.1f}", file=sys.stderr)
        result.update({f"tokens_per_s_{hidden}": round(tokens / ours), f"raw_tokens_per_s_{hidden}":
                       round(tokens / raw), f"ratio_{hidden}": round(raw / ours, 3),
                       f"gflops_{hidden}": round(gflops, 1),
                       f"fraction_of_peak_{hidden}": round(gflops / peak, 3),
                       f"raw_fraction_of_peak_{hidden}": round(raw_gflops / peak, 3)})
        if args.bf16 and hidden == 256 and not loop.cpu_has_bf16_kernels():
            print("bf16: refused on this CPU (no oneDNN bf16 kernels, AVX-512)", file=sys.stderr)
            result["bf16_supported"] = False
        elif args.bf16 and hidden == 256:
            fp32 = min(rnnlab_step_time(hidden, args.repeats), rnnlab_step_time(hidden, args.repeats))
            bf16 = min(rnnlab_step_time(hidden, args.repeats, "bf16"),
                       rnnlab_step_time(hidden, args.repeats, "bf16"))
            print(f"hidden {hidden}: fp32 step {fp32 * 1e3:.0f} ms, bf16 step {bf16 * 1e3:.0f} ms",
                  file=sys.stderr)
            result.update({f"bf16_tokens_per_s_{hidden}": round(tokens / bf16),
                           f"bf16_speedup_{hidden}": round(fp32 / bf16, 3),
                           f"bf16_vs_raw_{hidden}": round(raw / bf16, 3)})
    if args.cells:
        result.update(compare_cells(args.repeats))
    emit(result)


if __name__ == "__main__":
    main()
