"""Named corpora on the command line: `rnnlab datasets`, and a name wherever a corpus path goes.

No test here reaches the network: in-process runs have urlopen replaced by one that fails the test, and
the download-failure run is a subprocess whose only route out is a proxy on a closed local port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from rnnlab import cli
from rnnlab.data import registry
from rnnlab.data.registry import DATASETS

TINY = ["--hidden", "8", "--embedding", "4", "--layers", "1", "--seq-len", "32", "--batch-size", "4",
        "--max-steps", "2", "--sample-every", "0", "--no-progress"]


@pytest.fixture(autouse=True)
def _offline_and_one_thread(monkeypatch, tmp_path):
    def no_network(url, *args, **kwargs):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(registry.urllib.request, "urlopen", no_network)
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))  # never the user's cache
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_datasets_lists_name_size_licence_source_and_checksums(capsys, shared_data):
    assert cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert set(DATASETS) == {"jungle-book", "tiny-shakespeare", "wikitext-2", "ptb"}
    blocks = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            name = line.split()[0]
            blocks[name] = []
        blocks[name].append(line)
    assert sorted(blocks) == sorted(DATASETS)
    for name, entry in DATASETS.items():
        block = "\n".join(blocks[name])
        assert entry.licence in blocks[name][0]
        assert f"source {entry.source}" in block
        assert entry.size is None or f"{entry.size:,} bytes" in blocks[name][0]
        for split, file in entry.files.items():
            assert f"{split:6} {file.filename}  {file.url}" in block
        shown = [line.split()[:2] for line in blocks[name][3:] if not line.strip().startswith(entry.splits)]
        assert shown == [["sha256", f.sha256] if f.sha256 else [f.published.algorithm, f.published.hexdigest]
                         for f in entry.files.values()]
    assert "303,898 bytes" in blocks["jungle-book"][0] and "1,115,394 bytes" in blocks["tiny-shakespeare"][0]
    assert "size not published" in blocks["ptb"][0]
    assert "(published by GluonNLP's WikiText2 dataset)" in "\n".join(blocks["wikitext-2"])
    # The checksums printed are those of the real files.
    for name in ("jungle-book", "tiny-shakespeare"):
        digest = hashlib.sha256((shared_data / f"{name}.txt").read_bytes()).hexdigest()
        assert f"sha256 {digest}" in "\n".join(blocks[name])


def test_train_on_a_name_with_data_dir(tmp_path, shared_data, capsys):
    out = tmp_path / "jb"
    assert cli.main(["train", "jungle-book", "--data-dir", str(shared_data), "-o", str(out), *TINY]) == 0
    corpus = json.loads((out / "config.json").read_text())["corpus"]
    assert corpus["source"] == "jungle-book"
    # The Gutenberg header and footer are gone: 273,055 characters of Kipling remain.
    assert corpus["train_chars"] + corpus["valid_chars"] + corpus["test_chars"] == 273_055
    assert not (tmp_path / "cache").exists()  # read in place, nothing cached or downloaded


def test_train_and_generate_with_rnnlab_data_dir(tmp_path, shared_data, monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(shared_data))
    out = tmp_path / "ts"
    assert cli.main(["train", "tiny-shakespeare", "-o", str(out), *TINY]) == 0
    corpus = json.loads((out / "config.json").read_text())["corpus"]
    assert corpus["source"] == "tiny-shakespeare"
    assert corpus["train_chars"] + corpus["valid_chars"] + corpus["test_chars"] == 1_115_394
    capsys.readouterr()
    assert cli.main(["generate", str(out), "--prompt", "ROMEO:", "--length", "10", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:")


def test_an_unknown_name_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["train", "jungle-bok", "-o", str(tmp_path / "out"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err == ("rnnlab: error: no such file or named corpus: jungle-bok "
                   "(known corpora: jungle-book, ptb, tiny-shakespeare, wikitext-2)\n")
    assert not (tmp_path / "out").exists()


def _closed_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_name_missing_locally_with_no_network_is_a_clear_error(tmp_path):
    empty, cache, out = tmp_path / "data", tmp_path / "cache", tmp_path / "out"
    empty.mkdir()
    dead_proxy = f"http://127.0.0.1:{_closed_port()}"  # the only route out: connection refused
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "rnnlab_data_dir")}
    env.update(RNNLAB_CACHE=str(cache), http_proxy=dead_proxy, https_proxy=dead_proxy,
               HTTP_PROXY=dead_proxy, HTTPS_PROXY=dead_proxy, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "rnnlab", "train", "jungle-book", "--data-dir", str(empty),
                             "-o", str(out), *TINY], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rnnlab: error: could not download "
                               "https://www.gutenberg.org/cache/epub/236/pg236.txt: ")
    assert "--data-dir" in lines[0] and "jungle-book.txt" in lines[0]
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # no partial download left behind
    assert not out.exists() and list(empty.iterdir()) == []
