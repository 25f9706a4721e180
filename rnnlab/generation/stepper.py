"""One recurrent step per generated token, cheaper than calling the model (or nn.LSTM) once per token.

Why: a decoding step of a small model is a few matrix-vector products, a few microseconds of arithmetic,
but `model(ids, state)` pays a fixed price on every call that is larger than that on the CPU: the fused
modules run each layer through oneDNN's RNN primitive (aten::mkldnn_rnn_layer, about 0.2 ms a layer
per call on a 2x256 LSTM at batch 1, whatever the sequence length), and the model embeds, reshapes
and slices around them. `CellStepper` is built once per decode from the model's weights and then replays
the same cell equations with a fixed, short list of tensor ops writing into preallocated buffers
(`resized` gives a stepper for another batch that shares the prepared weights: a server's batch changes
size whenever a request joins or leaves, and preparing 2x512 weights again cost a decode step and a half):

    layer 0:  one row of a per-token table (the embedding folded into the input projection,
              table[V, G*H] = embedding @ W_ih0^T + biases) + h0 @ W_hh0^T
    layer l:  h_{l-1} @ W_ih^T + biases + h_l @ W_hh^T
    then the gate math of the cell, and (projection when tied, then) the decoder

where G is the number of gates (LSTM 4, GRU 3, Elman 1). Weights are stored transposed and contiguous,
which streams them in memory order in a batch-1 product. Folding is skipped when the table would cost
more to build than the steps would save (a large vocabulary and a short sample), or take too much
memory; layer 0 then gathers the embedding rows and projects them like any other layer.

The stepper's state is the model's own ([layers, B, H] tensors, a (h, c) tuple for an LSTM), so a
caller can prime with `model(...)`, decode with a stepper and carry the state on to a later call. Which
stepper runs is the model's answer, never its type: `model.step_kind()` says "gated" (CellStepper, on
`model.gated_layer_weights()`), "min" (MinStepper, on `model.rnn.step_weights()`) or None, and a model
without an answer (reference cells, bidirectional or "last"-output models, weights not in float32 on
the CPU, any other module) is stepped by `ModelStepper`, its own forward.
"""

from __future__ import annotations

import copy
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.models.rnn_lm import RNNLanguageModel, State

__all__ = ["Stepper", "ModelStepper", "WindowStepper", "CellStepper", "MinStepper", "make_stepper", "select_rows",
           "step_kind"]

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}

# A folded input table bigger than this (in float32 elements, 256 MiB) is not built.
_MAX_TABLE_ELEMENTS = 1 << 26


class Stepper(Protocol):
    def step(self, tokens: Tensor) -> Tensor:
        """tokens[B] (int64) -> the next-token logits [B, V], the state advanced by one token."""

    def state(self) -> State:
        """The current state in the model's own format (a copy the stepper will not touch again)."""

    def resized(self, state: State | None, batch: int) -> Stepper:
        """A stepper of the same model for `batch` rows starting from `state`, sharing the weights."""


class ModelStepper:
    """The model's own forward, one token at a time: for models `CellStepper` does not cover."""

    def __init__(self, model: nn.Module, state: State | None):
        self.model = model
        self._state = state

    def step(self, tokens: Tensor) -> Tensor:
        logits, self._state = self.model(tokens[:, None], self._state)  # [B, 1, V]
        return logits[:, -1]

    def state(self) -> State:
        return self._state

    def resized(self, state: State | None, batch: int) -> ModelStepper:
        return ModelStepper(self.model, state)


class WindowStepper:
    """Models that predict from what they read whole (output "last": the window and prefix objectives).

    A window model re-reads its last `context` tokens at every step, as it was trained; a bidirectional
    prefix model re-reads its whole row. A unidirectional prefix model reads its row from the zero state,
    so carrying the state token by token is the same computation at O(1) per token. `rows` [B, T]: the
    ids read so far (the prompt), each row then extended by the tokens stepped.
    """

    def __init__(self, model: nn.Module, rows: Tensor, state: State | None):
        c = model.config
        self.model, self.width = model, c.context
        self.stateful = c.context is None and not c.bidirectional
        self.rows = rows if c.context is None else rows[:, -c.context:]
        self._state = state

    def step(self, tokens: Tensor) -> Tensor:
        if self.stateful:
            logits, self._state = self.model(tokens[:, None], self._state)
            return logits
        self.rows = torch.cat([self.rows, tokens[:, None]], dim=1)
        if self.width is not None:
            self.rows = self.rows[:, -self.width:]
        logits, _ = self.model(self.rows)
        return logits

    def state(self) -> State:
        return self._state

    def resized(self, state: State | None, batch: int) -> WindowStepper:
        raise NotImplementedError("a window model's rows are its state: it is not batched continuously")


def step_kind(model: nn.Module) -> str | None:
    """The model's own answer to how it may be stepped ("gated", "min" or None); None for any module
    that does not say."""
    ask = getattr(model, "step_kind", None)
    return ask() if callable(ask) else None


def make_stepper(model: nn.Module, state: State | None, batch: int, steps: int,
                 rows: Tensor | None = None) -> Stepper:
    """A `CellStepper` or `MinStepper` for `model` when one covers it, a `WindowStepper` for a model that
    predicts from a whole window (given the `rows` [B, T] read so far), else a `ModelStepper`; `steps`: how
    many will run."""
    if reads_windows(model):
        if rows is None:
            raise ValueError("a window or prefix model is stepped from the rows it has read")
        return WindowStepper(model, rows, state)
    kind = step_kind(model)
    if kind == "gated":
        return CellStepper(model, state, batch, fold=_worth_folding(model, batch, steps))
    if kind == "min":
        return MinStepper(model, state, batch)
    return ModelStepper(model, state)


def select_rows(state: State | None, rows: Tensor) -> State | None:
    """Batch rows `rows` of a state ([layers, B, H], or an LSTM's pair of them); None stays None."""
    if state is None:
        return None
    if isinstance(state, tuple | list):
        return type(state)(s.index_select(1, rows) for s in state)
    return state.index_select(1, rows)


def reads_windows(model: nn.Module) -> bool:
    """True for a language model whose output is the last position's (window and prefix objectives)."""
    config = getattr(model, "config", None)
    return getattr(config, "output", "sequence") == "last"


def _worth_folding(model: RNNLanguageModel, batch: int, steps: int) -> bool:
    """Fold when the table costs no more to build than it saves: V rows against steps * batch rows."""
    c = model.config
    if model.embedding is None:
        return True  # one-hot: the table is W_ih0 itself, transposed
    size = c.vocab_size * GATES[c.cell] * c.hidden_size
    return c.vocab_size <= steps * batch and size <= _MAX_TABLE_ELEMENTS


def _t(weight: Tensor) -> Tensor:
    """W[out, in] -> W^T[in, out], contiguous: x @ W^T then reads the matrix in memory order."""
    return weight.detach().t().contiguous()


class _TableInput:
    """Layer 0's input projection as a row gather: table[token] = embed(token) @ W_ih0^T + bias."""

    def __init__(self, model: RNNLanguageModel, w_ih: Tensor, bias: Tensor):
        with torch.no_grad():
            if model.embedding is None:  # one-hot rows pick columns of W_ih0
                self.table = (w_ih.t() + bias).contiguous()
            else:
                self.table = torch.addmm(bias, model.embedding.weight, w_ih.t())  # [V, G*H]

    def project(self, tokens: Tensor, out: Tensor) -> None:
        torch.index_select(self.table, 0, tokens, out=out)


class _EmbeddingInput:
    """Layer 0's input projection when the table is not built: gather embedding rows, then project."""

    def __init__(self, model: RNNLanguageModel, w_ih: Tensor, bias: Tensor):
        self.embedding = model.embedding.weight.detach()
        self.w_t, self.bias = _t(w_ih), bias
        self.x = self.embedding.new_empty(0, self.embedding.shape[1])

    def project(self, tokens: Tensor, out: Tensor) -> None:
        if self.x.shape[0] != tokens.shape[0]:  # a resized stepper's first step
            self.x = self.embedding.new_empty(tokens.shape[0], self.embedding.shape[1])
        torch.index_select(self.embedding, 0, tokens, out=self.x)
        torch.addmm(self.bias, self.x, self.w_t, out=out)


class _LinearInput:
    """An upper layer's input projection: h_{l-1} @ W_ih^T + bias."""

    def __init__(self, w_ih: Tensor, bias: Tensor):
        self.w_t, self.bias = _t(w_ih), bias

    def project(self, x: Tensor, out: Tensor) -> None:
        torch.addmm(self.bias, x, self.w_t, out=out)


class _LSTMLayer:
    """c' = σ(f) * c + σ(i) * tanh(g); h' = σ(o) * tanh(c'), gates = input part + h @ W_hh^T (i, f, g, o).

    tanh(g) = 2σ(2g) - 1, and the g rows of the weights and biases come doubled (see `double_g_rows`),
    so one sigmoid over all four gates serves the cell: c' = σ(f) * c + 2 σ(i) σ(2g) - σ(i). On the CPU
    tanh costs several times what sigmoid does, and at batch 64 it was a tenth of the step.
    """

    def __init__(self, project, w_hh: Tensor):
        self.project, self.w_hh_t = project, _t(double_g_rows(w_hh))

    def bind(self, h: Tensor, c: Tensor) -> _LSTMLayer:
        """This layer's weights on the state rows h, c [B, H] (a copy; the weights are shared)."""
        layer = copy.copy(self)
        layer.h, layer.c = h, c
        layer.gates = h.new_empty(h.shape[0], self.w_hh_t.shape[1])
        layer.i, layer.f, layer.g, layer.o = layer.gates.chunk(4, dim=1)
        layer.tanh_c = torch.empty_like(h)
        return layer

    def step(self, x: Tensor) -> Tensor:
        self.project(x, self.gates)
        torch.addmm(self.gates, self.h, self.w_hh_t, out=self.gates)
        self.gates.sigmoid_()  # i, f, o, and σ(2g) in the g quarter
        self.c.mul_(self.f).addcmul_(self.i, self.g, value=2.0).sub_(self.i)
        torch.tanh(self.c, out=self.tanh_c)
        torch.mul(self.o, self.tanh_c, out=self.h)
        return self.h


def double_g_rows(t: Tensor) -> Tensor:
    """A copy of an LSTM weight [4H, ...] or bias [4H] with the candidate (g) rows times 2 (exactly)."""
    scale = t.new_ones(t.shape[0])
    quarter = t.shape[0] // 4
    scale[2 * quarter:3 * quarter] = 2.0
    return t * (scale[:, None] if t.dim() == 2 else scale)


class _GRULayer:
    """r, z = σ(x part + h part); n = tanh(x_n + r * (h @ W_hn^T + b_hn)); h' = n + z * (h - n)."""

    def __init__(self, project, w_hh: Tensor, b_hh: Tensor):
        self.project, self.w_hh_t, self.b_hh = project, _t(w_hh), b_hh

    def bind(self, h: Tensor, _c: None = None) -> _GRULayer:
        layer = copy.copy(self)
        layer.h = h
        B, H = h.shape
        layer.gx, layer.gh = h.new_empty(B, 3 * H), h.new_empty(B, 3 * H)
        layer.rz = h.new_empty(B, 2 * H)
        layer.r, layer.z = layer.rz.chunk(2, dim=1)
        layer.n, layer.h_minus_n = torch.empty_like(h), torch.empty_like(h)
        layer.gx_rz, layer.gx_n = layer.gx[:, :2 * H], layer.gx[:, 2 * H:]
        layer.gh_rz, layer.gh_n = layer.gh[:, :2 * H], layer.gh[:, 2 * H:]
        return layer

    def step(self, x: Tensor) -> Tensor:
        self.project(x, self.gx)
        torch.addmm(self.b_hh, self.h, self.w_hh_t, out=self.gh)
        torch.add(self.gx_rz, self.gh_rz, out=self.rz).sigmoid_()
        torch.addcmul(self.gx_n, self.r, self.gh_n, out=self.n).tanh_()
        torch.sub(self.h, self.n, out=self.h_minus_n)
        torch.addcmul(self.n, self.z, self.h_minus_n, out=self.h)
        return self.h


class _ElmanLayer:
    """h' = tanh or relu(x part + h @ W_hh^T)."""

    def __init__(self, project, w_hh: Tensor, relu: bool):
        self.project, self.w_hh_t, self.relu = project, _t(w_hh), relu

    def bind(self, h: Tensor, _c: None = None) -> _ElmanLayer:
        layer = copy.copy(self)
        layer.h, layer.pre = h, torch.empty_like(h)
        return layer

    def step(self, x: Tensor) -> Tensor:
        self.project(x, self.pre)
        torch.addmm(self.pre, self.h, self.w_hh_t, out=self.pre)
        if self.relu:
            torch.clamp(self.pre, min=0.0, out=self.h)
        else:
            torch.tanh(self.pre, out=self.h)
        return self.h


class CellStepper:
    """The model's recurrent stack and output layers as preallocated buffers and a short list of ops.

    `state` (the model's format, or None for zeros) is copied in; `fold` builds layer 0's per-token
    input table (see the module docstring). For models whose `step_kind()` is "gated".
    """

    def __init__(self, model: RNNLanguageModel, state: State | None, batch: int, fold: bool = True):
        c = model.config
        self.kind, self.folded, self.hidden_size = c.cell, fold, c.hidden_size
        with torch.no_grad():
            weights = model.gated_layer_weights()
            self._weights = [self._layer(model, k, weights[k], fold) for k in range(c.layers)]
            self.projection_weights = None
            if model.projection is not None:
                self.projection_weights = (model.projection.bias.detach(), _t(model.projection.weight))
            self.decoder = (model.decoder.bias.detach(), _t(model.decoder.weight))
        self._bind(state, batch)

    def _bind(self, state: State | None, batch: int) -> None:
        """Buffers for `batch` rows, the state copied in (None: zeros), each layer bound to its rows."""
        bias, w_t = self.decoder
        self.h_all = w_t.new_zeros(len(self._weights), batch, self.hidden_size)
        self.c_all = torch.zeros_like(self.h_all) if self.kind == "lstm" else None
        if state is not None:
            self._load(state)
        self.layers = [layer.bind(self.h_all[k], None if self.c_all is None else self.c_all[k])
                       for k, layer in enumerate(self._weights)]
        self.projection = None
        if self.projection_weights is not None:
            p_bias, p_w_t = self.projection_weights
            self.projection = (p_bias, p_w_t, w_t.new_empty(batch, p_w_t.shape[1]))
        self.logits = w_t.new_empty(batch, w_t.shape[1])

    def resized(self, state: State | None, batch: int) -> CellStepper:
        stepper = copy.copy(self)
        stepper._bind(state, batch)
        return stepper

    def _load(self, state: State) -> None:
        if self.kind == "lstm":
            self.h_all.copy_(state[0])
            self.c_all.copy_(state[1])
        else:
            self.h_all.copy_(state)

    def _layer(self, model: RNNLanguageModel, k: int, weights, fold: bool):
        w_ih, w_hh, b_ih, b_hh = weights
        # GRU's b_hn sits inside r * (W_hn h + b_hn), so its hidden bias stays with the hidden product.
        bias = b_ih if self.kind == "gru" else b_ih + b_hh
        if self.kind == "lstm":
            w_ih, bias = double_g_rows(w_ih), double_g_rows(bias)
        if k > 0:
            project = _LinearInput(w_ih, bias).project
        elif fold:
            project = _TableInput(model, w_ih, bias).project
        else:
            project = _EmbeddingInput(model, w_ih, bias).project
        if self.kind == "lstm":
            return _LSTMLayer(project, w_hh)
        if self.kind == "gru":
            return _GRULayer(project, w_hh, b_hh)
        return _ElmanLayer(project, w_hh, relu=self.kind == "rnn_relu")

    def step(self, tokens: Tensor) -> Tensor:
        """tokens[B] -> logits[B, V]: a buffer overwritten by the next step (clone it to keep it)."""
        x = tokens
        for layer in self.layers:
            x = layer.step(x)
        if self.projection is not None:
            bias, w_t, out = self.projection
            x = torch.addmm(bias, x, w_t, out=out)
        bias, w_t = self.decoder
        return torch.addmm(bias, x, w_t, out=self.logits)

    def state(self) -> State:
        if self.kind == "lstm":
            return self.h_all.clone(), self.c_all.clone()
        return self.h_all.clone()


class MinStepper:
    """A min-cell stack (`models.cells.MinRNN`) one token at a time, its weights read once, no modules.

    The same equations as `MinBlock.step`: each block's input projection on preallocated transposed
    weights, then the cell's own `update` (no scan); the embedding is folded into the input projection
    (table[V, H] = embedding @ W_in^T + b_in). For models whose `step_kind()` is "min".
    """

    def __init__(self, model: RNNLanguageModel, state: State | None, batch: int):
        c = model.config
        self.H = c.hidden_size
        projection, blocks, self.norm = model.rnn.step_weights()
        with torch.no_grad():
            rows = torch.eye(c.vocab_size) if model.embedding is None else model.embedding.weight.detach()
            if projection is not None:
                rows = torch.addmm(projection[1], rows, projection[0].t())
            self.table = rows.contiguous()  # [V, H]: token -> the blocks' input
            self.blocks = []
            for b in blocks:
                mlp = None
                if b.mlp is not None:
                    norm, up_w, up_b, down_w, down_b = b.mlp
                    mlp = (norm, up_b, _t(up_w), down_b, _t(down_w))
                self.blocks.append((b.norm, b.cell_bias, _t(b.cell_weight), _t(b.out_weight), mlp, b.update))
            self.projection = None
            if model.projection is not None:
                self.projection = (model.projection.bias.detach(), _t(model.projection.weight))
            self.decoder = (model.decoder.bias.detach(), _t(model.decoder.weight))
        self.h = self.table.new_zeros(c.layers, batch, c.hidden_size)
        if state is not None:
            self.h.copy_(state)

    def resized(self, state: State | None, batch: int) -> MinStepper:
        stepper = copy.copy(self)
        stepper.h = self.h.new_zeros(self.h.shape[0], batch, self.h.shape[2])
        if state is not None:
            stepper.h.copy_(state)
        return stepper

    def step(self, tokens: Tensor) -> Tensor:
        H = self.H
        x = self.table.index_select(0, tokens)  # [B, H]
        for k, ((norm_w, eps), bias, w_t, out_t, mlp, update) in enumerate(self.blocks):
            gates = torch.addmm(bias, F.rms_norm(x, (H,), norm_w, eps), w_t)
            h = self.h[k]
            h.copy_(update(gates, h))
            x = torch.addmm(x, h, out_t)
            if mlp is not None:
                (mlp_w, mlp_eps), up_b, up_t, down_b, down_t = mlp
                hidden = F.gelu(torch.addmm(up_b, F.rms_norm(x, (H,), mlp_w, mlp_eps), up_t))
                x = x + torch.addmm(down_b, hidden, down_t)
        x = F.rms_norm(x, (H,), *self.norm)
        if self.projection is not None:
            x = torch.addmm(self.projection[0], x, self.projection[1])
        return torch.addmm(self.decoder[0], x, self.decoder[1])

    def state(self) -> State:
        return self.h.clone()
