"""rnnlab against a small character transformer: same split, same wall-clock minutes, test bits per character.

    python benchmarks/vs_transformer.py --minutes M [--corpus jungle-book|tiny-shakespeare] [--data-dir DIR]
                                        [--option NAME=VALUE ...] [--no-transformer]

`--no-transformer` runs arm (a) alone: a tuning run of rnnlab's settings on the same split (chosen on
`rnnlab_valid_bpc`, never on the test figure).

Protocol. Both models train, one after the other (never concurrently), for the same `--minutes` of wall clock
(evaluation time included) on the same training text, select their checkpoint on the same validation text
only, and are scored once, at the end, on the same test text, in bits per character (mean cross-entropy in
nats / ln 2 over every test character but the first, which has nothing to be predicted from).

Splits. jungle-book: _common.jungle_book_split (first floor(0.9 n) characters, the rest is test);
validation is the last 5% of the training part. tiny-shakespeare: nanoGPT's split (first 90% train, last 10%
held out); the held-out 10% is the test split here, and validation is carved from the end of the first 90%
(its last 5%), so neither model selects on test.

(a) rnnlab with its defaults, run exactly as benchmarks/jungle_book.py runs it (`rnnlab.train(...,
max_time=M, epochs=None, eval_every=100, sample_every=0)`, best-validation weights, static
`lm.evaluate(test)`); `--option NAME=VALUE` overrides one of its defaults (repeatable). Its char tokenizer
builds the vocabulary from its own training file and handles unseen test characters itself.

(b) A GPT written below (not imported from nanoGPT) with nanoGPT's published CPU recipe (README, "I only have
a macbook"): n_layer=4, n_head=4, n_embd=128, block_size 64, batch_size 12, AdamW lr 1e-3, betas (0.9, 0.99),
weight decay 0.1 on 2-D weights only, grad clip 1.0, 100 warmup iterations then cosine decay to lr/10,
bias=False, LayerNorm, GELU MLP 4x, tied token embedding / lm_head, learned position embedding; dropout 0.2
(nanoGPT's recipe says 0.0). As the budget is wall clock, the cosine is taken at f = elapsed / total time.
Every 250 iterations (and at the end) it is evaluated on 240 fixed validation windows (eval mode, no grad)
and the best-validation weights are kept. Its vocabulary is the sorted set of characters of the whole text
(train + valid + test), so it has no unknowns. Validation and test are scored with the full context the
model allows: windows of 64 with stride 32, each window scoring only its last 32 positions (the first
window scores all of its own), so every character is scored exactly once with 32 to 64 characters of context.

The last line of stdout is one JSON object; progress goes to stderr. torch's default thread count is used.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit, jungle_book_split, parse_option  # noqa: E402

import rnnlab  # noqa: E402
from rnnlab.data.corpus import read_corpus  # noqa: E402

CORPORA = {"jungle-book": "jungle-book.txt", "tiny-shakespeare": "tiny-shakespeare.txt"}


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- the GPT

@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.2


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=False)
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=False)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False), nn.Dropout(cfg.dropout))
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)
        x = x + self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c)))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=False)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for module in self.modules():  # nanoGPT's init: N(0, 0.02), residual projections scaled down
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
        for block in self.blocks:
            for proj in (block.c_proj, block.mlp[2]):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (batch, time, vocab) for token ids (batch, time), time <= block_size."""
        t = idx.shape[1]
        assert t <= self.cfg.block_size, f"{t} tokens is longer than the block size {self.cfg.block_size}"
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(t, device=idx.device)))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied matrix counts once


# ------------------------------------------------------------------------------------ full-context scoring

def full_context_windows(n_tokens: int, block: int, stride: int) -> list[tuple[int, int, int]]:
    """(start, end, n_scored) per window: inputs ids[start:end] predict ids[start+1:end+1], and only the
    last n_scored of those predictions count. The first window scores all of its positions, each later one
    the `stride` (or fewer, at the end) positions after the previous window's, with up to `block` of context.
    Every target 1 .. n_tokens-1 is scored exactly once."""
    windows, done = [], 0  # done: targets 1..done are scored
    while done < n_tokens - 1:
        end = min(block if done == 0 else done + stride, n_tokens - 1)
        windows.append((max(0, end - block), end, end - done))
        done = end
    return windows


@torch.no_grad()
def score_full_context(model: GPT, ids: torch.Tensor, stride: int = 32, batch_size: int = 128) -> dict:
    """Bits per character of `ids` (1-D) under `model`, each position with as much context as fits."""
    block = model.cfg.block_size
    windows = full_context_windows(len(ids), block, stride)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        chunk = windows[i:i + batch_size]
        length = chunk[0][1] - chunk[0][0]
        assert all(e - s == length for s, e, _ in chunk)  # only a text shorter than one window is shorter
        inputs = torch.stack([ids[s:e] for s, e, _ in chunk])
        targets = torch.stack([ids[s + 1:e + 1] for s, e, _ in chunk])
        nll = F.cross_entropy(model(inputs).transpose(1, 2), targets, reduction="none")  # (batch, time)
        for row, (_, _, n_scored) in enumerate(chunk):
            total += nll[row, length - n_scored:].double().sum().item()
            count += n_scored
    model.train(was_training)
    assert count == len(ids) - 1, (count, len(ids))
    return {"bpc": total / count / math.log(2), "count": count}


# ------------------------------------------------------------------------------------------- training

def train_transformer(train_ids: torch.Tensor, valid_ids: torch.Tensor, vocab_size: int, seconds: float, *,
                      cfg: GPTConfig | None = None, batch_size: int = 12, lr: float = 1e-3,
                      warmup_iters: int = 100, eval_every: int = 250, eval_windows: int = 240,
                      seed: int = 0, log=log) -> tuple[GPT, dict]:
    """nanoGPT's CPU recipe for `seconds` of wall clock; returns the best-validation model and a summary."""
    torch.manual_seed(seed)
    cfg = cfg or GPTConfig(vocab_size=vocab_size)
    model = GPT(cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))
    min_lr, block = lr / 10, cfg.block_size
    gen = torch.Generator().manual_seed(seed)
    val_block = min(block, len(valid_ids) - 1)
    val_starts = torch.randint(len(valid_ids) - val_block, (eval_windows,), generator=gen)
    val_x = torch.stack([valid_ids[s:s + val_block] for s in val_starts.tolist()])
    val_y = torch.stack([valid_ids[s + 1:s + 1 + val_block] for s in val_starts.tolist()])

    @torch.no_grad()
    def valid_bpc() -> float:
        model.eval()
        loss = sum(F.cross_entropy(model(x).transpose(1, 2), y, reduction="sum").item()
                   for x, y in zip(val_x.split(60), val_y.split(60)))
        model.train()
        return loss / val_y.numel() / math.log(2)

    best, best_state, best_iter, it, loss = float("inf"), None, 0, 0, float("nan")
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        out_of_time = elapsed >= seconds
        if it % eval_every == 0 or out_of_time:
            bpc = valid_bpc()
            improved = bpc < best
            if improved:
                best, best_state, best_iter = bpc, copy.deepcopy(model.state_dict()), it
            log(f"transformer iter {it} {elapsed:.0f}s train_loss {loss:.4f} valid_bpc {bpc:.4f}"
                f"{' *' if improved else ''}")
        if out_of_time:
            break
        f = min(elapsed / seconds, 1.0)
        step_lr = (lr * (it + 1) / (warmup_iters + 1) if it < warmup_iters
                   else min_lr + 0.5 * (1.0 + math.cos(math.pi * f)) * (lr - min_lr))
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        starts = torch.randint(len(train_ids) - block, (batch_size,), generator=gen).tolist()
        x = torch.stack([train_ids[s:s + block] for s in starts])
        y = torch.stack([train_ids[s + 1:s + 1 + block] for s in starts])
        loss_t = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss, it = loss_t.item(), it + 1
    model.load_state_dict(best_state)
    model.eval()
    return model, {"iters": it, "best_iter": best_iter, "best_window_bpc": best, "seconds": elapsed}


# --------------------------------------------------------------------------------------------- splits

def load_splits(corpus: str, data_dir: Path) -> tuple[str, str, str]:
    """(train, valid, test) text of a corpus; see the module docstring."""
    text = read_corpus(Path(data_dir) / CORPORA[corpus])
    if corpus == "jungle-book":
        train_part, test = jungle_book_split(text)
    else:  # nanoGPT's shakespeare_char split: first 90% train, last 10% held out
        n = int(0.9 * len(text))
        train_part, test = text[:n], text[n:]
    n_val = len(train_part) // 20
    return train_part[:-n_val], train_part[-n_val:], test


# ----------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget of each model")
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="jungle-book")
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="override one of rnnlab's defaults (repeatable), e.g. hidden_size=256")
    parser.add_argument("--no-transformer", action="store_true",
                        help="train and score rnnlab alone (a tuning run; compare rnnlab_valid_bpc)")
    args = parser.parse_args()
    train, valid, test = load_splits(args.corpus, Path(args.data_dir))
    overrides = dict(parse_option(item) for item in args.option)
    log(f"{args.corpus}: train {len(train):,} valid {len(valid):,} test {len(test):,} characters; "
        f"{args.minutes} minutes each; {torch.get_num_threads()} threads")

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for name, part in (("train", train), ("valid", valid), ("test", test)):
            (work / f"{name}.txt").write_text(part, encoding="utf-8")
        options = dict(max_time=args.minutes, epochs=None, eval_every=100, sample_every=0)
        options.update(overrides)
        lm = rnnlab.train(work / "train.txt", work / "model", val_file=work / "valid.txt", log=log,
                          progress=False, **options)
        rnn_test = lm.evaluate(work / "test.txt")["bpc"]
        rnn_valid = lm.evaluate(work / "valid.txt")["bpc"]
        info = lm.info()
    log(f"rnnlab: test_bpc {rnn_test:.4f} valid_bpc {rnn_valid:.4f}")

    result = {"corpus": args.corpus, "minutes": args.minutes, "rnnlab_test_bpc": round(rnn_test, 4),
              "transformer_test_bpc": None, "rnnlab_valid_bpc": round(rnn_valid, 4), "transformer_valid_bpc": None,
              "rnnlab_steps": info["training"]["steps"], "transformer_iters": None,
              "rnnlab_parameters": info["parameters"]["total"], "transformer_parameters": None,
              "threads": torch.get_num_threads(), "options": {k: str(v) for k, v in overrides.items()}}
    if not args.no_transformer:
        chars = sorted(set(train + valid + test))
        index = {c: i for i, c in enumerate(chars)}

        def encode(s: str) -> torch.Tensor:
            return torch.tensor([index[c] for c in s], dtype=torch.long)

        model, summary = train_transformer(encode(train), encode(valid), len(chars), args.minutes * 60.0)
        tf_valid = score_full_context(model, encode(valid))["bpc"]
        tf_test = score_full_context(model, encode(test))["bpc"]
        log(f"transformer: test_bpc {tf_test:.4f} valid_bpc {tf_valid:.4f} (best at iter {summary['best_iter']})")
        result.update(transformer_test_bpc=round(tf_test, 4), transformer_valid_bpc=round(tf_valid, 4),
                      transformer_iters=summary["iters"], transformer_parameters=model.num_parameters())
    emit(result)


if __name__ == "__main__":
    main()
