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
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import ConfigError

__all__ = ["LSTMCell", "GRUCell", "ElmanCell", "ReferenceRNN", "make_recurrent", "MODES", "IMPLS"]

MODES = ("lstm", "gru", "rnn_tanh", "rnn_relu")
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


def make_recurrent(mode: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                   bidirectional: bool = False, impl: str = "fused") -> nn.Module:
    """The recurrent stack for `--cell mode` and `--cell-impl impl`, always batch_first.

    "fused" gives torch.nn.LSTM / GRU / RNN (nonlinearity tanh or relu); "reference" gives ReferenceRNN.
    Both take x[B, T, I] and return (out[B, T, D*H], state) with interchangeable state_dicts.
    """
    if impl not in IMPLS:
        raise ConfigError(f"--cell-impl must be one of {', '.join(IMPLS)} (got {impl!r})")
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
