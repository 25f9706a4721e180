"""What a model learns to predict, as one small object per `--objective`: how a text becomes its training
or evaluation data, its batches, how that data is scored, and what the model outputs.

    sequence   every next token of a stream read in truncated-BPTT rows (char-rnn, word_language_model);
               the stream begins with the tokenizer's start-of-text context; the model outputs a
               prediction at every position and carries its state (output "sequence", no context limit)
    window     the Keras tutorials' many-to-one: `window` tokens predict the next one; the model reads
               only those (output "last", context = window)
    prefixes   every prefix of each line predicts its next token (Keras' n-gram-sequences tutorial);
               lines are scored alone (output "last", no context limit)

The context width a trained model reads is `ModelConfig.context`; inference reads it there, never the
training settings.
"""

from __future__ import annotations

from typing import Any

import torch

from rnnlab.config import TrainConfig
from rnnlab.data import batching
from rnnlab.data.token_store import TokenStore
from rnnlab.data.tokenizers import Tokenizer
from rnnlab.errors import ConfigError
from rnnlab.training.metrics import evaluate_ids, evaluate_prefixes


class Objective:
    name = ""
    output = "last"  # the model's output: "sequence" (every position) or "last" (the last position)

    def context(self, train: TrainConfig) -> int | None:
        """How many tokens the trained model reads to predict one (None: all of them, statefully)."""
        return None

    def encode(self, tokenizer: Tokenizer, text: str) -> tuple[Any, int]:
        """(the text as this objective's data: token ids, or lines of ids; how many tokens the text has)."""
        ids = tokenizer.encode(text)
        return torch.tensor(ids, dtype=torch.long), len(ids)

    def from_store(self, store: TokenStore, split: str) -> tuple[Any, int]:
        """`encode` of the split's text, read from a token store (a view of its memory map, not a copy)."""
        return store.ids(split)[store.meta["start_tokens"]:], store.text_tokens(split)

    def batches(self, data: Any, train: TrainConfig, rank: int = 0, world_size: int = 1):
        raise NotImplementedError

    def evaluate(self, model, data: Any, chars_per_token: float, device, batch_size: int = 16,
                 seq_len: int = 256, context: int | None = None) -> dict[str, Any]:
        raise NotImplementedError


class SequenceObjective(Objective):
    name = "sequence"
    output = "sequence"

    def encode(self, tokenizer: Tokenizer, text: str) -> tuple[torch.Tensor, int]:
        # The stream begins with the start-of-text context (tokenizers.START_TEXT), where generation and
        # evaluation begin too, so the text's first token is predicted like any other.
        ids = tokenizer.encode(text)
        return torch.tensor(tokenizer.start_ids() + ids, dtype=torch.long), len(ids)

    def from_store(self, store: TokenStore, split: str) -> tuple[Any, int]:
        return store.ids(split), store.text_tokens(split)  # the store's splits begin with the start context

    def batches(self, data: torch.Tensor, train: TrainConfig, rank: int = 0, world_size: int = 1):
        return batching.SequenceBatches(data, train.batch_size, train.seq_len, seed=train.seed, rank=rank,
                                        world_size=world_size)

    def evaluate(self, model, data, chars_per_token, device, batch_size=16, seq_len=256, context=None):
        return evaluate_ids(model, data, chars_per_token, device, batch_size=batch_size, seq_len=seq_len)


class WindowObjective(Objective):
    name = "window"

    def context(self, train: TrainConfig) -> int | None:
        return train.window

    def batches(self, data: torch.Tensor, train: TrainConfig, rank: int = 0, world_size: int = 1):
        return batching.WindowBatches(data, train.batch_size, train.window, train.stride, seed=train.seed,
                                      rank=rank, world_size=world_size)

    def evaluate(self, model, data, chars_per_token, device, batch_size=16, seq_len=256, context=None):
        return evaluate_ids(model, data, chars_per_token, device, batch_size=batch_size, window=context)


class PrefixObjective(Objective):
    name = "prefixes"

    def from_store(self, store: TokenStore, split: str) -> tuple[Any, int]:
        raise ConfigError("--objective prefixes reads the lines of a text: train on the corpus itself, "
                          "not on a token store")

    def encode(self, tokenizer: Tokenizer, text: str) -> tuple[list[list[int]], int]:
        lines = [tokenizer.encode(line) for line in text.split("\n") if line.strip()]
        return lines, sum(len(line) for line in lines)

    def batches(self, data: list[list[int]], train: TrainConfig, rank: int = 0, world_size: int = 1):
        return batching.PrefixBatches(data, train.batch_size, seed=train.seed, rank=rank, world_size=world_size)

    def evaluate(self, model, data, chars_per_token, device, batch_size=16, seq_len=256, context=None):
        # One token per prefix is scored and counted as one character (the Keras tutorials' accuracy).
        return evaluate_prefixes(model, *batching.line_prefixes(data), device)


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (SequenceObjective(), WindowObjective(), PrefixObjective())}


def objective_of(name: str) -> Objective:
    """The objective named by --objective (the config has already checked the name)."""
    return OBJECTIVES[name]
