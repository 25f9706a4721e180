"""Human-readable reports of a model directory: `rnnlab info` text and the training-history plot."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab._plot import figure_format, pyplot, save_figure
from rnnlab.errors import ModelDirError


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def format_info(info: dict[str, Any]) -> str:
    """`rnnlab info` as aligned text: settings, parameters (PyTorch and Keras counts), corpus, metrics."""
    lines = [f"model directory  {info['path']}"]
    m = info["model"]
    lines.append(f"network          {m['cell']} x {m['layers']} layer(s), hidden {m['hidden_size']}, "
                 f"{'one-hot input' if m['input'] == 'onehot' else 'embedding ' + str(m['embedding_size'])}, "
                 f"dropout {m['dropout']}"
                 + (" (locked: one mask per sequence)" if m.get("locked_dropout") else "") + ", "
                 + (f"embedding dropout {m['embed_dropout']}, " if m.get("embed_dropout") else "")
                 + (f"weight drop {m['weight_drop']}, " if m.get("weight_drop") else "")
                 + f"tied {m['tie_weights']}, bidirectional {m['bidirectional']}, "
                 f"cells {m['cell_impl']}")
    if m["cell"] in ("mingru", "minlstm"):
        mlp = f"MLP {m['mlp_ratio']}x{m['hidden_size']} (GELU)" if m.get("mlp_ratio") else "no MLP"
        lines.append(f"blocks           residual, pre-norm (RMSNorm): x + W_out {m['cell']}(norm(x)), then "
                     f"x + {mlp}(norm(x)); final RMSNorm; a whole segment per scan of h = a h + b "
                     f"(Feng et al. 2024)")
    tok = info["tokenizer"]
    lines.append(f"tokenizer        {tok['kind']} level, vocabulary {tok['vocab_size']}")
    lines.extend(_parameter_table(info["parameters"], info["keras_parameters"]))
    corpus = info.get("corpus") or {}
    if corpus:
        lines.append(f"corpus           {corpus.get('source')}: {_fmt_count(corpus.get('train_chars', 0))} "
                     f"training characters ({_fmt_count(corpus.get('train_tokens', 0))} tokens), "
                     f"{_fmt_count(corpus.get('valid_chars', 0))} validation, "
                     f"{_fmt_count(corpus.get('test_chars', 0))} test")
    train = info.get("train") or {}
    if train:
        objective = train.get("objective")
        shape = {"sequence": f"seq-len {train.get('seq_len')}",
                 "window": f"window {train.get('window')}, stride {train.get('stride')}"}.get(objective)
        lines.append(f"training         objective {objective}, batch {train.get('batch_size')}, "
                     + (f"{shape}, " if shape else "")
                     + f"{train.get('optimizer')} lr {train.get('lr')}, "
                     f"schedule {train.get('schedule')}, "
                     + (f"weight average (ema) {train.get('ema')}, " if train.get("ema") else "")
                     + (f"activation regularisation (AR) {train.get('ar')}, " if train.get("ar") else "")
                     + (f"temporal AR (TAR) {train.get('tar')}, " if train.get("tar") else "")
                     + (f"precision {train.get('precision')}, " if train.get("precision", "fp32") != "fp32" else "")
                     + f"seed {train.get('seed')}")
    summary = info.get("training") or {}
    if summary:
        lines.append(f"run              {summary.get('steps')} steps, {summary.get('epochs_completed')} "
                     f"epoch(s), {summary.get('seconds')} s on {summary.get('device')}, stopped by "
                     f"{summary.get('stopped')}")
        for key in ("best", "last"):
            r = summary.get(key)
            if r:
                lines.append(f"{key + ' metrics':<17}step {r['step']}: val loss {r['val_loss']:.4f}, "
                             f"perplexity {r['val_perplexity']:.3f}, {r['val_bpc']:.4f} bpc, "
                             f"accuracy {r['val_accuracy']:.4f}")
    return "\n".join(lines)


def _parameter_table(params: dict[str, int], keras: dict[str, int] | None) -> list[str]:
    """PyTorch's layers beside the layers Keras' model.summary() would list for the same network."""
    left = [(k, v) for k, v in params.items() if k != "total"] + [("total", params["total"])]
    if keras is None:  # no Keras layer computes this cell
        return (["parameters       pytorch (Keras has no such layer)"]
                + [f"                 {name:<16}{_fmt_count(count):>10}" for name, count in left])
    right = [(k, v) for k, v in keras.items() if k != "total"] + [("total", keras["total"])]
    # Both totals on one row, the last one.
    rows = max(len(left), len(right))
    left = left[:-1] + [("", None)] * (rows - len(left)) + left[-1:]
    right = right[:-1] + [("", None)] * (rows - len(right)) + right[-1:]
    out = [f"parameters       {'pytorch':<26}  keras model.summary()"]
    for (ln, lv), (rn, rv) in zip(left, right):
        lcell = f"{ln:<16}{_fmt_count(lv):>10}" if lv is not None else " " * 26
        rcell = f"{rn:<16}{_fmt_count(rv):>10}" if rv is not None else ""
        out.append(f"                 {lcell}  {rcell}".rstrip())
    diff = params["total"] - keras["total"]
    if diff:
        out.append(f"                 ({_fmt_count(abs(diff))} {'more' if diff > 0 else 'fewer'} in PyTorch: "
                   f"it keeps two bias vectors per gate (input and recurrent), Keras one)")
    return out


# ------------------------------------------------------------------------------------ history plot

@dataclass
class History:
    """The per-evaluation curves of a run (metrics.jsonl) and where it stopped."""

    epoch: list[float]
    train_loss: list[float | None]
    val_loss: list[float]
    train_accuracy: list[float | None]
    val_accuracy: list[float]
    best_epoch: float  # the evaluation whose weights model.safetensors holds (lowest validation loss)
    best_val_loss: float
    stop_epoch: float  # the last evaluation
    stopped: str | None  # summary.json's reason ("early_stopping", "epochs", ...) if the run finished


def read_history(model_dir: str | os.PathLike) -> History:
    """The curves `plot_history` draws, read from MODEL_DIR/metrics.jsonl (and summary.json's stop reason)."""
    from rnnlab import _io
    from rnnlab.training import checkpoint as ckpt

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(f"model directory {model_dir} does not exist")
    records = [r for r in ckpt.read_metrics(model_dir) if "val_loss" in r and "epoch" in r]
    if not records:
        raise ModelDirError(f"{model_dir} holds no training history ({ckpt.METRICS} is missing or empty)")
    best = min(records, key=lambda r: r["val_loss"])
    stopped = None
    if (model_dir / ckpt.SUMMARY).is_file():
        stopped = _io.read_json(model_dir / ckpt.SUMMARY).get("stopped")
    return History(epoch=[r["epoch"] for r in records],
                   train_loss=[r.get("train_loss") for r in records],
                   val_loss=[r["val_loss"] for r in records],
                   train_accuracy=[r.get("train_accuracy") for r in records],
                   val_accuracy=[r.get("val_accuracy") for r in records],
                   best_epoch=best["epoch"], best_val_loss=best["val_loss"],
                   stop_epoch=records[-1]["epoch"], stopped=stopped)


def plot_history(model_dir: str | os.PathLike, output_png: str | os.PathLike) -> Path:
    """Draw training and validation loss and accuracy per epoch, the early-stopping point marked.

    Two panels (loss, accuracy) share the epoch axis; a dashed line marks the evaluation whose weights
    were kept (the lowest validation loss, what Keras' EarlyStopping(restore_best_weights=True) keeps),
    and a dotted one where a run stopped early. The image format follows the suffix (.png, .pdf, .svg);
    the file is written atomically. Returns the output path.
    """
    output = Path(output_png)
    fmt = figure_format(output, "-o/--output")
    history = read_history(model_dir)
    fig, (ax_loss, ax_acc) = pyplot().subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    _draw(ax_loss, history, history.train_loss, history.val_loss, "loss (nats per token)")
    _draw(ax_acc, history, history.train_accuracy, history.val_accuracy, "next-token accuracy")
    fig.suptitle(f"training history: {Path(model_dir).resolve().name}")
    return save_figure(fig, output, fmt)


def _draw(ax, h: History, train: list, valid: list, label: str) -> None:
    train_points = [(e, v) for e, v in zip(h.epoch, train) if v is not None]
    marker = "o" if len(h.epoch) <= 40 else None
    if train_points:
        ax.plot(*zip(*train_points), marker=marker, markersize=3, label="training")
    ax.plot(h.epoch, valid, marker=marker, markersize=3, label="validation")
    ax.axvline(h.best_epoch, color="tab:red", linestyle="--", linewidth=1,
               label=f"best: epoch {h.best_epoch:.2f} (weights kept)")
    if h.stopped == "early_stopping":
        ax.axvline(h.stop_epoch, color="tab:gray", linestyle=":", linewidth=1,
                   label=f"early stop: epoch {h.stop_epoch:.2f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
