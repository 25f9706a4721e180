"""The recurrent language model: token ids and a hidden state in, logits and the next state out.

    ids [B, T] -> embedding (or one-hot) [B, T, E] -> dropout -> stacked RNN/GRU/LSTM [B, T, H]
               -> dropout -> (projection H->E when tying) -> decoder [B, T, V]

Nothing else lives here: loss, softmax and sampling are the callers' business.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.config import ModelConfig
from rnnlab.models.cells import make_recurrent

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class RNNLanguageModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer before building the model")
        self.config = config
        V, E, H = config.vocab_size, config.embedding_size, config.hidden_size
        if config.input == "embedding":
            self.embedding = nn.Embedding(V, E)
            input_size = E
        else:
            self.embedding = None
            input_size = V
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = make_recurrent(config.cell, input_size, H, config.layers,
                                  dropout=config.dropout if config.layers > 1 else 0.0,
                                  bidirectional=config.bidirectional, impl=config.cell_impl)
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
        if self.embedding is None:
            return F.one_hot(ids, self.config.vocab_size).float()  # [B, T, V]
        return self.embedding(ids)  # [B, T, E]

    def forward(self, ids: torch.Tensor, state: State | None = None,
                lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """ids [B, T] -> (logits [B, T, V], state); models with output "last" give logits [B, V].

        `lengths` [B] marks right-padded rows (prefix objective): padding never reaches the state that
        predicts, as Keras' masking promises, and the last real position of each row is read.
        """
        # Dropout is skipped outright in eval mode: generation calls this once per token.
        drop = self.training and self.config.dropout > 0
        x = self.embed(ids)
        if drop:
            x = self.dropout(x)
        if lengths is not None and isinstance(self.rnn, nn.RNNBase):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            out, state = self.rnn(packed, state)
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
        if drop:
            out = self.dropout(out)
        if self.projection is not None:
            out = self.projection(out)
        return self.decoder(out), state

    def _recurrent(self, x: torch.Tensor, state: State | None):
        if not (self.training and self.config.weight_drop > 0):
            return self.rnn(x, state)
        # DropConnect on the hidden-to-hidden matrices (Merity et al. 2017, AWD-LSTM): one mask per
        # step of training, shared by every time step, so the fused kernel still runs the whole
        # sequence; it regularises the recurrence itself, which dropout between layers never touches.
        dropped = {name: F.dropout(weight, self.config.weight_drop)
                   for name, weight in self.rnn.named_parameters() if name.startswith("weight_hh")}
        return torch.func.functional_call(self.rnn, dropped, (x, state))

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
