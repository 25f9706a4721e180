"""What a training run trains and validates on: the token store of its corpus, as its objective reads it.

Stream objectives read a token store: the one given as the corpus, or one built in MODEL_DIR/tokens from
the text (reused when the files and settings are the same), so small and large corpora take the same path.
The prefix objective reads lines, so it reads the text itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab.config import DataConfig, changed_settings
from rnnlab.data import token_store
from rnnlab.data.splits import load_corpus_splits
from rnnlab.data.tokenizers import CharTokenizer, Tokenizer, build_tokenizer
from rnnlab.errors import ConfigError, DataError
from rnnlab.training import distributed
from rnnlab.training.objectives import Objective

STORE_DIR = "tokens"  # where `train CORPUS` keeps the corpus's token store, inside the model directory


@dataclass
class TrainingData:
    """What a run trains and validates on (as its objective reads it), and what config.json records of it."""

    tokenizer: Tokenizer
    data_cfg: DataConfig
    train: Any
    valid: Any
    train_tokens: int
    valid_tokens: int
    train_chars: int
    valid_chars: int
    test_chars: int
    train_sha256: str
    source: str


def training_data(corpus, out_dir: Path, objective: Objective, data_cfg: DataConfig, data_opts: dict,
                  tokenizer: Tokenizer | None, extend: bool, env, *, val_file, test_file,
                  data_dir) -> TrainingData:
    """The run's data (see the module docstring). `tokenizer` (a resumed run's, or the base model's when
    fine-tuning) is used instead of building one; `extend` lets a char vocabulary grow by the new corpus's
    characters; `data_opts` are the data settings the user gave (a token store refuses other ones)."""
    if objective.name == "prefixes" and not token_store.is_token_store(corpus):
        return _text_data(corpus, data_cfg, tokenizer, extend, objective, val_file, test_file, data_dir)
    if token_store.is_token_store(corpus):
        if val_file is not None or test_file is not None:
            raise ConfigError("--val-file and --test-file belong to `rnnlab prepare` when training on a token "
                              "store: its splits are fixed when it is built")
        store = token_store.open_store(corpus)
        _refuse_store_settings(store, data_opts)
        if tokenizer is not None and store.tokenizer != tokenizer:
            raise DataError(f"the token store {corpus} was prepared with another tokenizer than this run's; "
                            f"prepare it with --tokenizer MODEL_DIR/tokenizer.json")
    else:
        where = out_dir / STORE_DIR
        if env.is_main:
            store = token_store.prepare_or_reuse(corpus, where, data_cfg, tokenizer=tokenizer, extend=extend,
                                                 val_file=val_file, test_file=test_file, data_dir=data_dir)
        distributed.barrier(env)  # the other ranks open the store rank 0 has built
        if not env.is_main:
            store = token_store.open_store(where)
    train, train_tokens = objective.from_store(store, "train")
    valid, valid_tokens = objective.from_store(store, "valid")
    return TrainingData(store.tokenizer, store.data_config, train, valid, train_tokens, valid_tokens,
                        store.chars("train"), store.chars("valid"), store.chars("test"),
                        store.meta["train_sha256"], str(corpus))


def _text_data(corpus, data_cfg: DataConfig, tokenizer: Tokenizer | None, extend: bool, objective: Objective,
               val_file, test_file, data_dir) -> TrainingData:
    splits = load_corpus_splits(corpus, data_cfg, val_file, test_file, data_dir)
    if tokenizer is None:
        tokenizer = build_tokenizer(splits.train, data_cfg)
    elif extend and isinstance(tokenizer, CharTokenizer):
        tokenizer = tokenizer.extend(tokenizer.unknown_items(splits.train))
    train, train_tokens = objective.encode(tokenizer, splits.train)
    valid, valid_tokens = objective.encode(tokenizer, splits.valid)
    return TrainingData(tokenizer, data_cfg, train, valid, train_tokens, valid_tokens, len(splits.train),
                        len(splits.valid), len(splits.test),
                        hashlib.sha256(splits.train.encode("utf-8")).hexdigest(), splits.source)


def _refuse_store_settings(store: token_store.TokenStore, data_opts: dict) -> None:
    """Data settings given with a token store must be the ones it was prepared with."""
    changed = changed_settings(store.data_config, data_opts, "prepared with")
    if changed:
        raise ConfigError(f"the token store {store.path} fixes how its text was read and tokenized; cannot "
                          f"change {'; '.join(changed)} (prepare another store)")
