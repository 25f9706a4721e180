import pytest

from rnnlab.data.corpus import read_corpus, read_text_file, split_text, strip_gutenberg
from rnnlab.errors import ConfigError, DataError

GUTENBERG = (
    "The Project Gutenberg eBook of Things\n"
    "licence text\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK THINGS ***\n"
    "First line.\n"
    "\n"
    "Last line.\n"
    "*** END OF THE PROJECT GUTENBERG EBOOK THINGS ***\n"
    "more licence\n"
)


def test_reads_utf8_dropping_bom_and_normalising_line_ends(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\rthree\n\xc3\xa9")
    assert read_text_file(path) == "one\ntwo\nthree\né"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"^no such file: .*nope\.txt$"):
        read_text_file(tmp_path / "nope.txt")


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b" \r\n\t\n", "holds only whitespace")])
def test_empty_or_blank_file_is_refused(tmp_path, content, message):
    path = tmp_path / "blank.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_text_file(path)


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    with pytest.raises(DataError) as info:
        read_text_file(path)
    assert str(info.value) == f"{path} looks like a binary file, not text"


def test_only_the_first_8_kib_are_probed_for_nul_bytes(tmp_path):
    path = tmp_path / "late.txt"
    path.write_bytes(b"a" * 8192 + b"\x00")
    assert read_text_file(path) == "a" * 8192 + "\x00"


def test_non_utf8_names_the_byte_and_its_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"x" * 1234 + b"\xff" + "é".encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_text_file(path)
    assert str(info.value) == (f"{path} is not UTF-8 text: invalid byte 0xff at byte offset 1234 "
                               "(give --encoding, e.g. latin-1, or --errors replace)")
    assert "\n" not in str(info.value)


def test_an_encoding_or_replacement_reads_what_strict_utf8_refuses(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("en état de partir".encode("latin-1"))
    assert read_text_file(path, encoding="latin-1") == "en état de partir"
    assert read_text_file(path, errors="replace") == "en \ufffdtat de partir"
    assert read_text_file(path, errors="ignore") == "en tat de partir"
    with pytest.raises(ConfigError, match="--encoding 'klingon'"):
        read_text_file(path, encoding="klingon")
    with pytest.raises(ConfigError, match="--errors"):
        read_text_file(path, errors="maybe")


def test_a_folder_is_read_with_one_encoding_choice_for_every_file(tmp_path):
    (tmp_path / "a.txt").write_text("plain ascii\n", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match=r"b\.txt is not UTF-8 text: invalid byte 0xe9 at byte offset 3"):
        read_corpus(tmp_path)
    assert read_corpus(tmp_path, errors="replace") == "plain ascii\n\ncaf\ufffd"


def test_utf16_gets_its_own_hint(tmp_path):
    path = tmp_path / "utf16.txt"
    path.write_bytes("hello".encode("utf-16"))
    with pytest.raises(DataError, match="UTF-16"):
        read_text_file(path)


def test_directory_reads_txt_files_sorted_and_joined(tmp_path):
    (tmp_path / "b.txt").write_text("bee", encoding="utf-8")
    (tmp_path / "a.txt").write_text("ay", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("sea", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    assert read_corpus(tmp_path) == "ay\nbee\nsea"


def test_directory_without_txt_files_is_refused(tmp_path):
    (tmp_path / "notes.md").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="directory with no .txt files"):
        read_corpus(tmp_path)
    with pytest.raises(DataError, match="is a directory"):
        read_text_file(tmp_path)


def test_strip_keeps_the_lines_between_the_markers():
    assert strip_gutenberg(GUTENBERG) == "First line.\n\nLast line."


def test_strip_with_one_marker_or_none():
    assert strip_gutenberg("head\n*** START OF X ***\nbody\n") == "body\n"
    assert strip_gutenberg("body\nmore\n*** END OF X ***\nfoot") == "body\nmore"
    assert strip_gutenberg("plain text\n") == "plain text\n"
    assert strip_gutenberg(strip_gutenberg(GUTENBERG)) == strip_gutenberg(GUTENBERG)


def test_read_corpus_strips_each_file_unless_keep_header(tmp_path):
    (tmp_path / "1.txt").write_text(GUTENBERG, encoding="utf-8")
    (tmp_path / "2.txt").write_text(GUTENBERG.replace("First", "Second"), encoding="utf-8")
    assert read_corpus(tmp_path) == "First line.\n\nLast line.\nSecond line.\n\nLast line."
    assert read_corpus(tmp_path / "1.txt", keep_header=True) == GUTENBERG


def test_gutenberg_file_with_nothing_between_markers_is_refused(tmp_path):
    path = tmp_path / "hollow.txt"
    path.write_text("*** START OF X ***\n\n*** END OF X ***\n", encoding="utf-8")
    with pytest.raises(DataError, match="--keep-header"):
        read_corpus(path)


def test_jungle_book_matches_the_readme_convention(shared_data, jungle_book_split):
    text = read_corpus(shared_data / "jungle-book.txt")
    # README: 273,055 characters, the newline ending the last kept line dropped with the END line.
    assert len(text) == 273_055
    assert text.lstrip().startswith("THE JUNGLE BOOK\n\nBy Rudyard Kipling")
    assert "Gutenberg" not in text and "\r" not in text
    assert text.endswith("pad and load!_\n\n\n\n\n\n        ")
    train, test = jungle_book_split(text)
    assert (len(train), len(test)) == (245_749, 27_306)
    assert train + test == text


def test_split_fractions_with_zero_test_give_the_readme_valid_part(shared_data):
    text = read_corpus(shared_data / "jungle-book.txt")
    train, valid, test = split_text(text, (0.9, 0.1, 0.0))
    assert valid == text[-27_306:] and test == ""
    assert train == text[:245_749]


def test_split_sizes_are_floors_of_the_written_decimals():
    text = "".join(chr(ord("a") + i % 26) for i in range(100))
    assert [len(p) for p in split_text(text, (0.29, 0.31, 0.4))] == [29, 31, 40]
    train, valid, test = split_text("abcdefghijklmnopqrst")
    assert (train, valid, test) == ("abcdefghijklmnopqr", "s", "t")
    assert split_text("abcdefghij", (0.5, 0.0, 0.5)) == ("abcde", "", "fghij")


@pytest.mark.parametrize("fractions", [(0.9, 0.2, 0.0), (0.0, 0.5, 0.5), (1.1, -0.1, 0.0), (0.5, 0.5)])
def test_bad_fractions_name_the_flag(fractions):
    with pytest.raises(ConfigError, match="--split"):
        split_text("some text here", fractions)


def test_text_too_short_for_a_training_part():
    with pytest.raises(DataError, match="too short"):
        split_text("ab", (0.1, 0.45, 0.45))


@pytest.mark.parametrize("shuffle_offset", [True, False])
def test_a_stream_too_short_for_one_batch_is_refused_not_trained_for_zero_steps(shuffle_offset):
    """Every length either gives at least one batch in every epoch or the one-line 'too short' error."""
    import torch

    from rnnlab.data.batching import SequenceBatches

    shortest = None
    for n in range(1, 120):
        try:
            batches = SequenceBatches(torch.arange(n), 4, 8, shuffle_offset=shuffle_offset)
        except DataError as exc:
            assert "too short" in str(exc) and shortest is None
            continue
        shortest = shortest or n
        assert len(batches) >= 1
        assert all(len(list(batches.epoch(e))) == len(batches) for e in range(10))
    assert shortest == ((2 * 4 + 1) * 8 if shuffle_offset else (4 + 1) * 8)
