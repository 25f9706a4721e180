"""Human-readable reports of a model directory: `rnnlab info` text and the training-history plot."""

from __future__ import annotations

from typing import Any


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def format_info(info: dict[str, Any]) -> str:
    """`rnnlab info` as aligned text: settings, parameters (PyTorch and Keras counts), corpus, metrics."""
    lines = [f"model directory  {info['path']}"]
    m = info["model"]
    lines.append(f"network          {m['cell']} x {m['layers']} layer(s), hidden {m['hidden_size']}, "
                 f"{'one-hot input' if m['input'] == 'onehot' else 'embedding ' + str(m['embedding_size'])}, "
                 f"dropout {m['dropout']}, tied {m['tie_weights']}, bidirectional {m['bidirectional']}, "
                 f"cells {m['cell_impl']}")
    tok = info["tokenizer"]
    lines.append(f"tokenizer        {tok['kind']} level, vocabulary {tok['vocab_size']}")
    lines.append("parameters       layer                 pytorch        keras")
    params, keras = info["parameters"], info["keras_parameters"]
    torch_layers = [k for k in params if k != "total"]
    for name in torch_layers:
        lines.append(f"                 {name:<20} {_fmt_count(params[name]):>8}")
    lines.append(f"                 {'total':<20} {_fmt_count(params['total']):>8}  "
                 f"{_fmt_count(keras['total']):>11}  (Keras keeps one bias per gate; PyTorch two)")
    keras_layers = ", ".join(f"{k} {_fmt_count(v)}" for k, v in keras.items() if k != "total")
    lines.append(f"keras summary    {keras_layers}")
    corpus = info.get("corpus") or {}
    if corpus:
        lines.append(f"corpus           {corpus.get('source')}: {_fmt_count(corpus.get('train_chars', 0))} "
                     f"training characters ({_fmt_count(corpus.get('train_tokens', 0))} tokens), "
                     f"{_fmt_count(corpus.get('valid_chars', 0))} validation, "
                     f"{_fmt_count(corpus.get('test_chars', 0))} test")
    train = info.get("train") or {}
    if train:
        lines.append(f"training         objective {train.get('objective')}, batch {train.get('batch_size')}, "
                     f"seq-len {train.get('seq_len')}, {train.get('optimizer')} lr {train.get('lr')}, "
                     f"schedule {train.get('schedule')}, seed {train.get('seed')}")
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
