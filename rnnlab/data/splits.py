"""A corpus read and cleaned as a run reads it, then split into train / validation / test text."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from rnnlab.config import DataConfig
from rnnlab.data import token_store
from rnnlab.data.corpus import check_encoding, read_corpus, split_text
from rnnlab.data.registry import resolve_corpus


@dataclass
class CorpusSplits:
    train: str
    valid: str
    test: str
    source: str


def load_corpus_splits(corpus: str | os.PathLike, data: DataConfig, val_file=None, test_file=None,
                       data_dir=None) -> CorpusSplits:
    """Read and clean a corpus (path, directory or registry name) and split it into train/valid/test: by
    `data.split`, unless validation text is given (`val_file`, or the registry's own split files)."""
    files = resolve_corpus(str(corpus), data_dir=data_dir)
    text = read_corpus(files.train, **reading(data))
    valid_path = val_file or files.valid
    test_path = test_file or files.test
    if valid_path is not None:
        valid = read_corpus(valid_path, **reading(data))
        test = read_corpus(test_path, **reading(data)) if test_path else ""
        return CorpusSplits(text, valid, test, str(corpus))
    train, valid, test = split_text(text, data.split)
    if test_path is not None:
        test = read_corpus(test_path, **reading(data))
    return CorpusSplits(train, valid, test, str(corpus))


def reading(data: DataConfig) -> dict[str, Any]:
    """How `data` says corpus files are read (read_corpus's options)."""
    check_encoding(data.encoding, data.errors)
    return token_store.reading_options(data)
