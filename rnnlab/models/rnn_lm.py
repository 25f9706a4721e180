"""The recurrent language model: token ids and a hidden state in, logits and the next state out.

    ids [B, T] -> embedding (or one-hot) [B, T, E] -> dropout -> stacked RNN/GRU/LSTM [B, T, H]
               -> dropout -> (projection H->E when tying) -> decoder [B, T, V]

AWD-LSTM's regularisers (Merity et al. 2018), all in training mode only: `embed_dropout` drops whole
rows of the embedding matrix (whole one-hot columns with one-hot input), and `locked_dropout` turns
`dropout` into one mask per sequence on the inputs, between the layers and on the outputs.

Nothing else lives here: loss, softmax and sampling are the callers' business (the activation
regularisers read the last layer's outputs through `forward(..., return_hidden=True)`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.config import MIN_CELLS, ModelConfig
from rnnlab.models.cells import MIN_MODES, MinRNN, locked_dropout, make_recurrent

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
GATED_CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


class GatedLayerWeights(NamedTuple):
    """One layer of a fused RNN/GRU/LSTM stack, gates in torch's order (LSTM i, f, g, o; GRU r, z, n):
    weight_ih [G*H, I], weight_hh [G*H, H], bias_ih and bias_hh [G*H], all detached."""

    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor
    bias_hh: torch.Tensor

# The aten ops torch.nn.LSTM / GRU / RNN call, by their `mode`: run one layer at a time for locked dropout.
_LAYER_OPS = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}


class RNNLanguageModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer before building the model")
        self.config = config
        V, E, H = config.vocab_size, config.embedding_size, config.hidden_size
        if config.input == "embedding":
            # nn.Embedding's own initialisation (a normal draw that _init_weights then replaces) is kept on
            # real devices, so a seed still gives the weights it always gave, and skipped on the meta device
            # (parameter counts): a meta tensor's normal_ runs torch's Python reference, whose first call
            # imports torch._dynamo, about 70 MB resident for the rest of the run.
            self.embedding = nn.Embedding(V, E, _weight=torch.empty(V, E))
            if self.embedding.weight.device.type != "meta":
                nn.init.normal_(self.embedding.weight)
            input_size = E
        else:
            self.embedding = None
            input_size = V
        self.dropout = nn.Dropout(config.dropout)
        # The min cells' blocks drop their residual branches even in a one-layer stack.
        between = config.dropout if config.layers > 1 or config.cell in MIN_MODES else 0.0
        self.rnn = make_recurrent(config.cell, input_size, H, config.layers, dropout=between,
                                  bidirectional=config.bidirectional, impl=config.cell_impl,
                                  mlp_ratio=config.mlp_ratio)
        features = H * (2 if config.bidirectional else 1)
        if config.tie_weights:
            # Weight tying (Press & Wolf 2017; Inan et al. 2017): the decoder reuses the embedding matrix,
            # so the hidden state is first projected to the embedding width when the two differ.
            self.projection = nn.Linear(features, E) if features != E else None
            self.decoder = nn.Linear(E, V)
            self.decoder.weight = self.embedding.weight
        else:
            self.projection = None
            self.decoder = nn.Linear(features, V)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.embedding is not None:
            nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if not self.config.tie_weights:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if self.config.cell == "lstm":
            # A forget-gate bias of 1 lets gradients flow through the cell early in training
            # (Jozefowicz et al. 2015). PyTorch orders the gates i, f, g, o.
            H = self.config.hidden_size
            for name, param in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    with torch.no_grad():
                        param[H:2 * H].fill_(1.0)

    def init_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        c = self.config
        shape = (c.layers * (2 if c.bidirectional else 1), batch_size, c.hidden_size)
        zeros = torch.zeros(shape, device=device)
        return (zeros, zeros.clone()) if c.cell == "lstm" else zeros

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        p = self.config.embed_dropout if self.training else 0.0
        if self.embedding is None:
            x = F.one_hot(ids, self.config.vocab_size).float()  # [B, T, V]
            # The one-hot "embedding" is the identity matrix: dropping its rows drops whole columns.
            return x * self._row_mask(x.new_empty(self.config.vocab_size), p) if p > 0 else x
        if p > 0:
            # Embedding dropout (Gal & Ghahramani 2016; AWD-LSTM's embedded_dropout): a token's whole row
            # is dropped, at every position where it occurs in the batch; kept rows are scaled 1/(1-p).
            # A tied decoder still reads the undropped matrix.
            weight = self.embedding.weight
            return F.embedding(ids, weight * self._row_mask(weight.new_empty(weight.shape[0], 1), p))
        return self.embedding(ids)  # [B, T, E]

    @staticmethod
    def _row_mask(mask: torch.Tensor, p: float) -> torch.Tensor:
        return mask.bernoulli_(1.0 - p).div_(1.0 - p)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout at rate `dropout` on x [B, T, F] or [B, F]: one mask per sequence with locked_dropout."""
        if self.config.locked_dropout and x.dim() == 3:
            return locked_dropout(x, self.config.dropout, True)
        return self.dropout(x)  # (a [B, F] "last" output has one position: locked and plain agree)

    def forward(self, ids: torch.Tensor, state: State | None = None, lengths: torch.Tensor | None = None,
                return_hidden: bool = False):
        """ids [B, T] -> (logits [B, T, V], state); models with output "last" give logits [B, V].

        `lengths` [B] marks right-padded rows (prefix objective): padding never reaches the state that
        predicts, as Keras' masking promises, and the last real position of each row is read.

        With `return_hidden` (sequence models only) a third item comes back, the last recurrent layer's
        outputs (raw, dropped), each [B, T, H * directions]: before and after the output dropout (the
        same tensor when no dropout acts), for the activation regularisers AR and TAR.
        """
        if return_hidden and self.config.output != "sequence":
            raise ValueError("return_hidden needs a model with output 'sequence' (AR/TAR act on every step)")
        # Dropout is skipped outright in eval mode: generation calls this once per token.
        drop = self.training and self.config.dropout > 0
        x = self.embed(ids)
        if drop:
            x = self._drop(x)
        if lengths is not None and isinstance(self.rnn, nn.RNNBase):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            out, state = self._recurrent(packed, state)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        elif lengths is not None and self.config.bidirectional:
            # Reference cells know nothing of padding, which the backward direction would read first:
            # run each row on its real tokens (bidirectional models never carry state).
            out, state = torch.cat([F.pad(self.rnn(x[i:i + 1, :n])[0], (0, 0, 0, ids.shape[1] - n))
                                    for i, n in enumerate(lengths.tolist())]), None
        else:
            out, state = self._recurrent(x, state)  # [B, T, H * directions]
        if self.config.output == "last":
            out = self._last_positions(out, lengths)  # [B, H * directions]
        raw = out
        if drop:
            out = self._drop(out)
        hidden = (raw, out)
        if self.projection is not None:
            out = self.projection(out)
        if return_hidden:
            return self.decoder(out), state, hidden
        return self.decoder(out), state

    def _recurrent(self, x, state: State | None):
        """The recurrent stack on x [B, T, I] (or a PackedSequence) -> (out, state)."""
        dropped = None
        if self.training and self.config.weight_drop > 0:
            # DropConnect on the hidden-to-hidden matrices (Merity et al. 2017, AWD-LSTM): one mask per
            # step of training, shared by every time step, so the fused kernel still runs the whole
            # sequence; it regularises the recurrence itself, which dropout between layers never touches.
            dropped = {name: F.dropout(weight, self.config.weight_drop)
                       for name, weight in self.rnn.named_parameters() if name.startswith("weight_hh")}
        if self._locked_between_layers() and isinstance(x, torch.Tensor):
            return self._layer_by_layer(x, state, dropped or {})
        if dropped is None:
            return self.rnn(x, state)
        return torch.func.functional_call(self.rnn, dropped, (x, state))

    def _locked_between_layers(self) -> bool:
        """Whether locked dropout between layers needs the stack run one layer at a time.

        Only torch's fused stacks, unidirectional, with more than one layer: their own dropout between
        layers is per element. Reference and min stacks, bidirectional models and packed (prefix)
        input keep the module's own dropout between layers; locked dropout still acts on their inputs
        and outputs.
        """
        c = self.config
        return (self.training and c.locked_dropout and c.dropout > 0 and c.layers > 1
                and not c.bidirectional and isinstance(self.rnn, nn.RNNBase))

    def _layer_by_layer(self, x: torch.Tensor, state: State | None, replaced: dict[str, torch.Tensor]):
        """The fused stack, one layer at a time with the same parameters (weight_ih_l{k}, ...), and a
        locked-dropout mask between layers: x [B, T, I], state [L, B, H] (or (h, c)) -> (out, state)."""
        rnn = self.rnn
        op, is_lstm, L = _LAYER_OPS[rnn.mode], rnn.mode == "LSTM", rnn.num_layers
        if state is None:
            zeros = x.new_zeros(L, x.shape[0], rnn.hidden_size)
            state = (zeros, zeros) if is_lstm else zeros
        h0, c0 = state if is_lstm else (state, None)
        names = ("weight_ih_l{}", "weight_hh_l{}", "bias_ih_l{}", "bias_hh_l{}") if rnn.bias else \
            ("weight_ih_l{}", "weight_hh_l{}")
        hs, cs = [], []
        for k in range(L):
            if k > 0:
                x = locked_dropout(x, self.config.dropout, True)
            weights = [replaced.get(n.format(k), getattr(rnn, n.format(k))) for n in names]
            # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
            if is_lstm:
                x, h, c = op(x, (h0[k:k + 1], c0[k:k + 1]), weights, rnn.bias, 1, 0.0, True, False, True)
                cs.append(c)
            else:
                x, h = op(x, h0[k:k + 1], weights, rnn.bias, 1, 0.0, True, False, True)
            hs.append(h)
        h_n = torch.cat(hs)  # [L, B, H]
        return x, ((h_n, torch.cat(cs)) if is_lstm else h_n)

    # -- one token at a time: generation's fast steppers ask these, never the model's type
    def step_kind(self) -> str | None:
        """How generation may step this model one token at a time without calling forward:

        "gated"  a fused RNN/GRU/LSTM stack: the stepper replays the cell's equations on the weights of
                 `gated_layer_weights()`;
        "min"    a minGRU/minLSTM stack: the stepper replays `MinRNN.step_weights()`;
        None     only forward computes this model: training mode (dropout), weights other than float32
                 on the CPU, last-position or bidirectional output, a max_norm embedding, reference cells.

        A subclass that changes forward is stepped through forward unless it overrides this too.
        """
        c = self.config
        if type(self).forward is not RNNLanguageModel.forward or type(self).step_kind is not \
                RNNLanguageModel.step_kind:
            return None
        if self.training or c.output != "sequence" or c.bidirectional:
            return None
        if self.embedding is not None and self.embedding.max_norm is not None:
            return None  # a max_norm embedding renormalises its rows as it reads them
        if not all(p.device.type == "cpu" and p.dtype == torch.float32 for p in self.parameters()):
            return None
        if isinstance(self.rnn, MinRNN):
            return "min"
        rnn = self.rnn
        if c.cell in GATED_CELLS and isinstance(rnn, nn.RNNBase) and rnn.bias and not getattr(rnn, "proj_size", 0):
            return "gated"
        return None

    def gated_layer_weights(self) -> list[GatedLayerWeights]:
        """The weights of each layer of a fused RNN/GRU/LSTM stack (step_kind "gated"), bottom first."""
        rnn = self.rnn
        return [GatedLayerWeights(*(getattr(rnn, f"{name}_l{k}").detach()
                                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
                for k in range(rnn.num_layers)]

    def _last_positions(self, out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        H = self.config.hidden_size
        if lengths is None:
            last = out[:, -1]
        else:
            rows = torch.arange(out.shape[0], device=out.device)
            last = out[rows, lengths.to(out.device) - 1]
        if self.config.bidirectional:
            # The backward direction has read the whole row by its first position.
            first = out[:, 0, H:]
            last = torch.cat([last[:, :H], first], dim=-1)
        return last


def detach_state(state: State | None) -> State | None:
    """Cut the graph between truncated-BPTT segments while keeping the values."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level layer and in total (tied weights counted once)."""
    seen: set[int] = set()
    per_layer: dict[str, int] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            continue
        seen.add(id(param))
        layer = name.split(".")[0]
        per_layer[layer] = per_layer.get(layer, 0) + param.numel()
    per_layer["total"] = sum(per_layer.values())
    return per_layer


def keras_parameter_count(config: ModelConfig) -> dict[str, int] | None:
    """The counts Keras' model.summary() shows for the same layers (one bias vector per gate, not two);
    None for the min cells, which Keras has no layer for."""
    if config.cell in MIN_CELLS:
        return None
    gates = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}[config.cell]
    directions = 2 if config.bidirectional else 1
    V, E, H = config.vocab_size, config.embedding_size, config.hidden_size
    counts: dict[str, int] = {}
    size_in = E if config.input == "embedding" else V
    if config.input == "embedding":
        counts["embedding"] = V * E
    for layer in range(config.layers):
        # Keras' GRU (reset_after=True, its default) keeps two bias vectors, like PyTorch.
        bias = 2 * gates * H if config.cell == "gru" else gates * H
        counts[f"{config.cell}_{layer}"] = directions * (gates * H * (size_in + H) + bias)
        size_in = H * directions
    out_in = size_in
    if config.tie_weights:
        if out_in != E:
            counts["projection"] = out_in * E + E
        counts["dense"] = V
    else:
        counts["dense"] = out_in * V + V
    counts["total"] = sum(counts.values())
    return counts


def with_vocabulary(model: RNNLanguageModel, vocab_size: int) -> RNNLanguageModel:
    """`model` with `vocab_size` >= its own tokens (a char vocabulary a fine-tuning corpus extended): the old
    rows untouched, each new token's rows started from the mean old row, its output bias the lowest old one
    (so it is not sampled until the new data teaches it). The same model when the size is its own."""
    n_old = model.config.vocab_size
    if vocab_size == n_old:
        return model
    resized = RNNLanguageModel(model.config.replace(vocab_size=vocab_size))
    state, new_state = model.state_dict(), resized.state_dict()
    for name, tensor in new_state.items():
        src = state[name]
        if src.shape == tensor.shape:
            new_state[name] = src
            continue
        merged = tensor.clone()  # a vocabulary-sized tensor: the embedding or decoder rows, the decoder bias
        merged[:n_old] = src
        merged[n_old:] = src.min() if name == "decoder.bias" else src.mean(dim=0, keepdim=True)
        new_state[name] = merged
    resized.load_state_dict(new_state)
    return resized
