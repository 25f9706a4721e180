"""Reference recurrent cells written as their equations, and a drop-in for torch's fused RNN modules.

The fused modules (torch.nn.LSTM / GRU / RNN, cuDNN on a GPU) are what training uses; this file is
what a reader reads to see what they compute. `ReferenceRNN` holds its parameters under exactly the
fused modules' names and shapes, so weights move between the two with load_state_dict, and the parity
tests check that both give the same outputs, states and gradients.

Conventions (PyTorch's): x is [B, I], h and c are [B, H]; a weight W_ih stacks the input weights of
every gate along its first dimension, [G*H, I], in the order the cell's docstring gives, and W_hh
likewise stacks the hidden weights, [G*H, H]. "*" is the element-wise product and σ the logistic sigmoid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import ConfigError

__all__ = ["LSTMCell", "GRUCell", "ElmanCell", "ReferenceRNN", "MinGRUCell", "MinLSTMCell", "MinRNN",
           "scan_log", "make_recurrent", "locked_dropout", "MODES", "MIN_MODES", "IMPLS"]

MODES = ("lstm", "gru", "rnn_tanh", "rnn_relu")
MIN_MODES = ("mingru", "minlstm")
IMPLS = ("fused", "reference")

State = Tensor | tuple[Tensor, Tensor]


class _Cell(nn.Module):
    """One time step with its own parameters, named like torch.nn.LSTMCell / GRUCell / RNNCell.

    Subclasses give the equations in a static `step(x, state, weight_ih, weight_hh, bias_ih, bias_hh)`
    that ReferenceRNN calls with its per-layer weights, so the equations are written once.
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(self.gates * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(self.gates * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(self.gates * hidden_size))
        _init_uniform(self.parameters(), hidden_size)

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)


class LSTMCell(_Cell):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997; forget gate: Gers et al., 2000).

    Gate order in the stacked weights: input i, forget f, candidate g, output o.

        i  = σ(W_ii x + b_ii + W_hi h + b_hi)
        f  = σ(W_if x + b_if + W_hf h + b_hf)
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
        o  = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g
        h' = o * tanh(c')

    forward(x[B, I], state=(h[B, H], c[B, H]) or None for zeros) -> (h'[B, H], c'[B, H]).
    """

    gates = 4

    @staticmethod
    def step(x: Tensor, state: tuple[Tensor, Tensor], weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor, bias_hh: Tensor) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, g, o = (F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)).chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if state is None:
            state = (self._zeros(x), self._zeros(x))
        return self.step(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(_Cell):
    """Gated recurrent unit (Cho et al., 2014), in PyTorch's (and cuDNN's) form.

    Gate order in the stacked weights: reset r, update z, candidate n.

        r  = σ(W_ir x + b_ir + W_hr h + b_hr)
        z  = σ(W_iz x + b_iz + W_hz h + b_hz)
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    The reset gate multiplies W_hn h + b_hn (after the matrix product), not h itself as in the paper;
    that is what lets both products be computed for all gates at once.

    forward(x[B, I], state=h[B, H] or None for zeros) -> h'[B, H].
    """

    gates = 3

    @staticmethod
    def step(x: Tensor, state: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor, bias_hh: Tensor) -> Tensor:
        h = state
        x_r, x_z, x_n = F.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)
        h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        return self.step(x, self._zeros(x) if state is None else state,
                         self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class ElmanCell(_Cell):
    """The simple recurrent network (Elman, 1990), torch.nn.RNNCell.

        h' = tanh(W_ih x + b_ih + W_hh h + b_hh)      (nonlinearity "tanh")
        h' = relu(W_ih x + b_ih + W_hh h + b_hh)      (nonlinearity "relu")

    forward(x[B, I], state=h[B, H] or None for zeros) -> h'[B, H].
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"--cell must be rnn_tanh or rnn_relu (got nonlinearity {nonlinearity!r})")
        super().__init__(input_size, hidden_size)
        self.nonlinearity = nonlinearity

    @staticmethod
    def step(x: Tensor, state: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor, bias_hh: Tensor, nonlinearity: str = "tanh") -> Tensor:
        pre = F.linear(x, weight_ih, bias_ih) + F.linear(state, weight_hh, bias_hh)
        return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        return self.step(x, self._zeros(x) if state is None else state,
                         self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)


_CELL_OF_MODE: dict[str, type[_Cell]] = {
    "lstm": LSTMCell, "gru": GRUCell, "rnn_tanh": ElmanCell, "rnn_relu": ElmanCell,
}


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout with one mask per sequence, shared by every time step (Gal & Ghahramani 2016; AWD-LSTM).

    x [B, T, F] -> x * mask[B, 1, F] / (1 - p) while training; x itself otherwise or when p == 0.
    """
    if not training or p == 0.0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1.0 - p).div_(1.0 - p)
    return x * mask


def _init_uniform(parameters, hidden_size: int) -> None:
    # torch's own initialisation for its recurrent modules, so a fresh ReferenceRNN starts like a fused one.
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in parameters:
            p.uniform_(-bound, bound)


def _check_sizes(mode: str, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
    if mode not in MODES:
        raise ConfigError(f"--cell must be one of {', '.join(MODES)} (got {mode!r})")
    if input_size < 1:
        raise ConfigError(f"input size must be at least 1 (got {input_size}; it is --embedding, "
                          "or the vocabulary size with --input onehot)")
    if hidden_size < 1:
        raise ConfigError(f"--hidden must be at least 1 (got {hidden_size})")
    if num_layers < 1:
        raise ConfigError(f"--layers must be at least 1 (got {num_layers})")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"--dropout must be in [0, 1) (got {dropout})")


class ReferenceRNN(nn.Module):
    """A stack of reference cells with torch.nn.LSTM / GRU / RNN's parameters and forward contract.

    Parameters, per layer k and direction (suffix "" forward, "_reverse" backward), exactly as torch
    names and shapes them, with G = 4 (lstm), 3 (gru), 1 (rnn_*) and D = 2 if bidirectional else 1:

        weight_ih_l{k}{suffix}  [G*H, I] for k = 0, [G*H, D*H] above
        weight_hh_l{k}{suffix}  [G*H, H]
        bias_ih_l{k}{suffix}    [G*H]
        bias_hh_l{k}{suffix}    [G*H]

    forward(x[B, T, I] (or [T, B, I] if not batch_first), state=None) -> (out, state'):
        out     [B, T, D*H]: the last layer's h at every step, the two directions concatenated
                (forward first); the backward direction reads the sequence from its end.
        state   h[L*D, B, H] for gru / rnn_*, (h, c) each [L*D, B, H] for lstm, rows ordered
                (layer 0 forward, layer 0 backward, layer 1 forward, ...); None means zeros.
    Dropout (in training mode only) applies to each layer's output except the last one's, as torch does.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, batch_first: bool = True, bidirectional: bool = False):
        super().__init__()
        _check_sizes(mode, input_size, hidden_size, num_layers, dropout)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = float(dropout)
        self.batch_first = batch_first
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        cell = _CELL_OF_MODE[mode]
        # The cell's equations as step(x, state, weight_ih, weight_hh, bias_ih, bias_hh) -> state.
        self._cell_step = (partial(ElmanCell.step, nonlinearity="relu" if mode == "rnn_relu" else "tanh")
                           if cell is ElmanCell else cell.step)
        gate_rows = cell.gates * hidden_size
        # Registered in torch's order (layer, then direction, then ih/hh weights and biases), so
        # state_dict() lists the same keys in the same order as the fused module's.
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes():
                name = f"l{layer}{suffix}"
                self.register_parameter(f"weight_ih_{name}", nn.Parameter(torch.empty(gate_rows, layer_input)))
                self.register_parameter(f"weight_hh_{name}", nn.Parameter(torch.empty(gate_rows, hidden_size)))
                self.register_parameter(f"bias_ih_{name}", nn.Parameter(torch.empty(gate_rows)))
                self.register_parameter(f"bias_hh_{name}", nn.Parameter(torch.empty(gate_rows)))
        _init_uniform(self.parameters(), hidden_size)

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def flatten_parameters(self) -> None:
        """No-op, so code written for the fused modules (which compact their weights for cuDNN) runs unchanged."""

    def _step(self, x: Tensor, state: State, layer: int, suffix: str) -> State:
        name = f"l{layer}{suffix}"
        return self._cell_step(x, state, getattr(self, f"weight_ih_{name}"), getattr(self, f"weight_hh_{name}"),
                               getattr(self, f"bias_ih_{name}"), getattr(self, f"bias_hh_{name}"))

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if not self.batch_first:
            x = x.transpose(0, 1)  # [T, B, I] -> [B, T, I]
        batch, steps, _ = x.shape
        is_lstm = self.mode == "lstm"
        if state is None:
            zeros = x.new_zeros(self.num_layers * self.num_directions, batch, self.hidden_size)
            state = (zeros, zeros) if is_lstm else zeros
        h0, c0 = state if is_lstm else (state, None)

        layer_input = x  # [B, T, I], then [B, T, D*H]
        final_h: list[Tensor] = []
        final_c: list[Tensor] = []
        for layer in range(self.num_layers):
            direction_outputs = []
            for direction, suffix in enumerate(self._suffixes()):
                row = layer * self.num_directions + direction
                carry = (h0[row], c0[row]) if is_lstm else h0[row]  # [B, H] each
                backward = direction == 1
                hs: list[Tensor] = []  # h after each step, in the order the steps are taken
                for t in (reversed(range(steps)) if backward else range(steps)):
                    carry = self._step(layer_input[:, t], carry, layer, suffix)
                    hs.append(carry[0] if is_lstm else carry)
                if backward:
                    hs.reverse()  # so that out[:, t] is the backward h at position t, as torch lays it out
                direction_outputs.append(torch.stack(hs, dim=1))  # [B, T, H]
                final_h.append(carry[0] if is_lstm else carry)
                if is_lstm:
                    final_c.append(carry[1])
            layer_input = torch.cat(direction_outputs, dim=-1)  # [B, T, D*H]
            if self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=self.training)

        out = layer_input if self.batch_first else layer_input.transpose(0, 1)
        h_n = torch.stack(final_h)  # [L*D, B, H]
        return out, ((h_n, torch.stack(final_c)) if is_lstm else h_n)

    def extra_repr(self) -> str:
        return (f"{self.mode}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}, bidirectional={self.bidirectional}")


# --- minGRU and minLSTM ---------------------------------------------------------------------------------
# Feng, Tung, Ahmed, Hajimirsadeghi & Bengio, "Were RNNs All We Needed?" (2024). Their gates read the input
# only, never h, so h_t = a_t * h_{t-1} + b_t with a_t, b_t known for every t at once: a whole sequence is
# a scan, computed here in log space with cumsum and logcumsumexp as the paper's appendix does it.


def g(x: Tensor) -> Tensor:
    """The paper's positive activation for the candidate state: x + 1/2 for x >= 0, σ(x) below."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """log g(x), computed without forming g (softplus keeps the negative side exact)."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


# Steps per scan chunk. log A_t grows like t, and exp(log A_t + log h_t) then cancels two large logarithms:
# in fp32 the error grows with the chunk's length (2.5e-5 at 256 steps, 4e-6 at 64), so long sequences
# are scanned in chunks with the state carried from one to the next.
SCAN_CHUNK = 32


def scan_log(log_a: Tensor, log_b: Tensor, h0: Tensor | None = None, chunk: int = SCAN_CHUNK) -> Tensor:
    """h_t = a_t * h_{t-1} + b_t for t = 1..T from log a, log b [B, T, H] and h0 [B, H] (None: zeros).

    With A_t = a_1 ... a_t, h_t = A_t * (h0 + sum_{k <= t} b_k / A_k), so
        log h_t = log A_t + logaddexp(log h0, logcumsumexp_k(log b_k - log A_k)):
    every term stays a logarithm, so nothing under- or overflows. h0 must be positive or zero (the
    cells' states are: g > 0). Runs `chunk` steps at a time (see SCAN_CHUNK); returns h [B, T, H].
    """
    pieces = []
    for start in range(0, log_a.shape[1], chunk):
        log_A = torch.cumsum(log_a[:, start:start + chunk], dim=1)
        log_h = torch.logcumsumexp(log_b[:, start:start + chunk] - log_A, dim=1)
        if h0 is not None:
            log_h = torch.logaddexp(h0.clamp_min(0).log().unsqueeze(1), log_h)
        pieces.append(torch.exp(log_A + log_h))
        h0 = pieces[-1][:, -1]
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)


class _LinearScan(torch.autograd.Function):
    """h_t = a_t * h_{t-1} + b_t, one step after another, with its own backward (a reverse scan):

        g_t = dL/dh_t + a_{t+1} * g_{t+1},   dL/db_t = g_t,   dL/da_t = g_t * h_{t-1},   dL/dh0 = a_1 * g_1

    Each step is one fused multiply-add over [B, H]; on a CPU that beats the log-space scan many times
    over (torch's logcumsumexp costs ten cumsums), and it is exact where the log-space form cancels.
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        a_t, b_t = a.transpose(0, 1).contiguous(), b.transpose(0, 1).contiguous()  # [T, B, H]
        h = torch.empty_like(b_t)
        prev = h0
        for t in range(a_t.shape[0]):
            torch.addcmul(b_t[t], a_t[t], prev, out=h[t])
            prev = h[t]
        ctx.save_for_backward(a_t, h, h0)
        return h.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        a_t, h, h0 = ctx.saved_tensors
        grad = grad_h.transpose(0, 1).contiguous()  # [T, B, H]; becomes g in place, from the end
        for t in range(grad.shape[0] - 2, -1, -1):
            grad[t].addcmul_(a_t[t + 1], grad[t + 1])
        h_prev = torch.cat([h0.unsqueeze(0), h[:-1]])
        grad_a = (grad * h_prev).transpose(0, 1)
        grad_h0 = a_t[0] * grad[0] if ctx.needs_input_grad[2] else None
        return grad_a, grad.transpose(0, 1), grad_h0


def scan_linear(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """h_t = a_t * h_{t-1} + b_t for a, b [B, T, H] and h0 [B, H] (None: zeros) -> h [B, T, H]."""
    if h0 is None:
        h0 = b.new_zeros(b.shape[0], b.shape[2])
    return _LinearScan.apply(a, b, h0)


class _MinCell(nn.Module):
    """What both min cells share: one stacked input projection [gates*H, I], and `step` as that
    projection followed by the cell's own `update(pre-activations, h)`."""

    gates = 0

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size, self.gates * hidden_size)

    @classmethod
    def step(cls, x: Tensor, h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return cls.update(F.linear(x, weight, bias), h)

    @staticmethod
    def update(k: Tensor, h: Tensor) -> Tensor:
        raise NotImplementedError


class MinGRUCell(_MinCell):
    """minGRU: a GRU whose update gate and candidate read the input only, and no reset gate.

    Stacked weight [2H, I] in the order: update z, candidate a.

        z  = σ(W_z x + b_z)
        h~ = g(W_a x + b_a)
        h' = (1 - z) * h + z * h~

    step(x[B, I], h[B, H]) is the recurrence one step at a time; forward(x[B, T, I], h0) computes all T
    states by one scan (`scan_linear`, or `scan_log` with scan="log"), with a_t = 1 - z_t, b_t = z_t * h~_t.
    """

    gates = 2

    @staticmethod
    def update(k: Tensor, h: Tensor) -> Tensor:
        """h' from the gates' pre-activations k [B, 2H] = W x + b and h [B, H]."""
        k_z, k_a = k.chunk(2, dim=-1)
        z = torch.sigmoid(k_z)
        return (1 - z) * h + z * g(k_a)

    def forward(self, x: Tensor, h0: Tensor | None = None, scan: str = "linear") -> Tensor:
        k_z, k_a = self.linear(x).chunk(2, dim=-1)  # [B, T, H] each
        if scan == "log":  # log(1 - σ(k)) = -softplus(k), log σ(k) = -softplus(-k)
            return scan_log(-F.softplus(k_z), -F.softplus(-k_z) + log_g(k_a), h0)
        z = torch.sigmoid(k_z)
        return scan_linear(1 - z, z * g(k_a), h0)


class MinLSTMCell(_MinCell):
    """minLSTM: forget and input gates that read the input only, normalised to sum to one.

    Stacked weight [3H, I] in the order: forget f, input i, candidate a.

        f  = σ(W_f x + b_f),  i = σ(W_i x + b_i)
        f' = f / (f + i),     i' = i / (f + i)
        h~ = g(W_a x + b_a)
        h' = f' * h + i' * h~

    The normalisation keeps h on the scale of h~ (the paper's time-independent form).
    """

    gates = 3

    @staticmethod
    def update(k: Tensor, h: Tensor) -> Tensor:
        """h' from the gates' pre-activations k [B, 3H] = W x + b and h [B, H]."""
        k_f, k_i, k_a = k.chunk(3, dim=-1)
        f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
        return f / (f + i) * h + i / (f + i) * g(k_a)

    def forward(self, x: Tensor, h0: Tensor | None = None, scan: str = "linear") -> Tensor:
        k_f, k_i, k_a = self.linear(x).chunk(3, dim=-1)
        if scan == "log":  # log(i / f) = log σ(k_i) - log σ(k_f); log f' = -softplus(d), log i' = -softplus(-d)
            d = F.softplus(-k_f) - F.softplus(-k_i)
            return scan_log(-F.softplus(d), -F.softplus(-d) + log_g(k_a), h0)
        f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
        total = f + i
        return scan_linear(f / total, i / total * g(k_a), h0)


_MIN_CELL_OF_MODE: dict[str, type[nn.Module]] = {"mingru": MinGRUCell, "minlstm": MinLSTMCell}


class MinBlock(nn.Module):
    """One residual block of the paper's language model, pre-normalised (RMSNorm) as in a transformer:

        x = x + W_out cell(norm(x))        (W_out mixes the cell's positive states into the stream)
        x = x + mlp(norm(x))               (H -> ratio*H -> GELU -> H; omitted when ratio is 0)

    with dropout on each branch while training.
    """

    def __init__(self, mode: str, hidden_size: int, dropout: float, mlp_ratio: int):
        super().__init__()
        self.norm = nn.RMSNorm(hidden_size)
        self.cell = _MIN_CELL_OF_MODE[mode](hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size, bias=False)
        self.mlp = None
        if mlp_ratio:
            self.mlp_norm = nn.RMSNorm(hidden_size)
            self.mlp = nn.Sequential(nn.Linear(hidden_size, mlp_ratio * hidden_size), nn.GELU(),
                                     nn.Linear(mlp_ratio * hidden_size, hidden_size))
        self.dropout = dropout

    def _drop(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.dropout, self.training) if self.dropout else x

    def forward(self, x: Tensor, h0: Tensor | None) -> tuple[Tensor, Tensor]:
        """x [B, T, H], h0 [B, H] or None -> (x' [B, T, H], the cell's last state [B, H])."""
        hs = self.cell(self.norm(x), h0)
        return self._finish(x, hs), hs[:, -1]

    def step(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, H], h [B, H] -> (x' [B, H], h' [B, H]): one token by the cell's own recurrence."""
        h = self.cell.step(self.norm(x), h, self.cell.linear.weight, self.cell.linear.bias)
        return self._finish(x, h), h

    def _finish(self, x: Tensor, hs: Tensor) -> Tensor:
        x = x + self._drop(self.out(hs))
        if self.mlp is not None:
            x = x + self._drop(self.mlp(self.mlp_norm(x)))
        return x


class MinBlockWeights(NamedTuple):
    """One `MinBlock`'s weights, detached: x' = x + out_weight cell(rms_norm(x)); x'' = x' + mlp(x')."""

    norm: tuple[Tensor, float]  # (RMSNorm weight [H], eps)
    cell_weight: Tensor  # [G*H, H]
    cell_bias: Tensor  # [G*H]
    out_weight: Tensor  # [H, H]
    mlp: tuple[tuple[Tensor, float], Tensor, Tensor, Tensor, Tensor] | None  # norm, up W, up b, down W, down b
    update: Callable[[Tensor, Tensor], Tensor]  # the cell's own update: (pre-activations, h) -> h'


class MinRNN(nn.Module):
    """A stack of `MinBlock`s with the fused modules' contract: x[B, T, I], h[L, B, H] -> (out, h').

    x is first projected to the blocks' width H when I != H; a final RMSNorm closes the stack. The state
    is each block's cell state (positive, zeros at the start), so TBPTT carries it like a GRU's h.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, mlp_ratio: int = 4):
        super().__init__()
        if mode not in MIN_MODES:
            raise ConfigError(f"--cell must be one of {', '.join(MIN_MODES)} here (got {mode!r})")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.input_projection = nn.Linear(input_size, hidden_size) if input_size != hidden_size else None
        self.blocks = nn.ModuleList(MinBlock(mode, hidden_size, dropout, mlp_ratio) for _ in range(num_layers))
        self.norm = nn.RMSNorm(hidden_size)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.input_projection is not None:
            x = self.input_projection(x)  # [B, T, H]
        last = []
        for k, block in enumerate(self.blocks):
            x, h = block(x, None if state is None else state[k])
            last.append(h)
        return self.norm(x), torch.stack(last)  # [B, T, H], [L, B, H]

    def step_weights(self) -> tuple[tuple[Tensor, Tensor] | None, list[MinBlockWeights], tuple[Tensor, float]]:
        """(input projection (weight, bias) or None, each block's weights, the final norm (weight, eps)):
        what a stepper needs to replay `step` without the modules."""
        def norm(n: nn.RMSNorm) -> tuple[Tensor, float]:
            return n.weight.detach(), n.eps

        blocks = []
        for block in self.blocks:
            mlp = None
            if block.mlp is not None:
                up, _, down = block.mlp
                mlp = (norm(block.mlp_norm), up.weight.detach(), up.bias.detach(), down.weight.detach(),
                       down.bias.detach())
            blocks.append(MinBlockWeights(norm(block.norm), block.cell.linear.weight.detach(),
                                          block.cell.linear.bias.detach(), block.out.weight.detach(), mlp,
                                          type(block.cell).update))
        projection = None
        if self.input_projection is not None:
            projection = (self.input_projection.weight.detach(), self.input_projection.bias.detach())
        return projection, blocks, norm(self.norm)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, I], state [L, B, H] -> (out [B, H], state'): the recurrence, one token, no scan."""
        if self.input_projection is not None:
            x = self.input_projection(x)
        last = []
        for k, block in enumerate(self.blocks):
            x, h = block.step(x, state[k])
            last.append(h)
        return self.norm(x), torch.stack(last)


def make_recurrent(mode: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                   bidirectional: bool = False, impl: str = "fused", mlp_ratio: int = 4) -> nn.Module:
    """The recurrent stack for `--cell mode` and `--cell-impl impl`, always batch_first.

    "fused" gives torch.nn.LSTM / GRU / RNN (nonlinearity tanh or relu); "reference" gives ReferenceRNN.
    Both take x[B, T, I] and return (out[B, T, D*H], state) with interchangeable state_dicts. The min
    cells give a `MinRNN` (one implementation; `mlp_ratio` sizes its blocks' MLPs).
    """
    if impl not in IMPLS:
        raise ConfigError(f"--cell-impl must be one of {', '.join(IMPLS)} (got {impl!r})")
    if mode in MIN_MODES:
        _check_sizes("gru", input_size, hidden_size, num_layers, dropout)
        if bidirectional or impl != "fused":
            raise ConfigError(f"--cell {mode} is unidirectional with one implementation")
        return MinRNN(mode, input_size, hidden_size, num_layers, dropout, mlp_ratio)
    _check_sizes(mode, input_size, hidden_size, num_layers, dropout)
    if impl == "reference":
        return ReferenceRNN(mode, input_size, hidden_size, num_layers, dropout, batch_first=True,
                            bidirectional=bidirectional)
    # Dropout acts between layers only, so with one layer it changes nothing; passing 0 then spares
    # the user torch's warning about it.
    between_layers = dropout if num_layers > 1 else 0.0
    common = dict(num_layers=num_layers, dropout=between_layers, batch_first=True, bidirectional=bidirectional)
    if mode == "lstm":
        return nn.LSTM(input_size, hidden_size, **common)
    if mode == "gru":
        return nn.GRU(input_size, hidden_size, **common)
    return nn.RNN(input_size, hidden_size, nonlinearity="relu" if mode == "rnn_relu" else "tanh", **common)
