import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.config import DataConfig
from rnnlab.data.corpus import read_corpus
from rnnlab.data.tokenizers import (
    GLUE,
    UNK,
    BPETokenizer,
    CharTokenizer,
    KerasWordTokenizer,
    WordTokenizer,
    build_tokenizer,
    load_tokenizer,
    save_tokenizer,
    tokenizer_from_dict,
)
from rnnlab.errors import ConfigError, DataError, ModelDirError, VocabularyError


def json_round_trip(tok):
    return tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))


# ------------------------------------------------------------------------------------------------ char


def test_char_vocabulary_is_unk_then_sorted_characters():
    tok = CharTokenizer.train("hello world")
    assert tok.chars == (" ", "d", "e", "h", "l", "o", "r", "w")
    assert (tok.vocab_size, tok.unk_id, tok.pad_id, tok.kind) == (9, 0, None, "char")
    assert tok.encode("hello") == [4, 3, 5, 5, 6]
    assert tok.decode([4, 3, 5, 5, 6]) == "hello"
    assert tok.token_text(0) == UNK and tok.token_text(1) == " "


def test_char_unknown_characters_replace_or_error():
    tok = CharTokenizer.train("abc")
    assert tok.encode("aéb☃é") == [1, 0, 2, 0, 0]
    assert tok.unknown_items("aéb☃é") == ["é", "☃"]
    assert tok.decode([1, 0, 2]) == "a\ufffdb"
    with pytest.raises(VocabularyError) as info:
        tok.encode("aéb☃é", unknown="error")
    assert str(info.value) == ("prompt has characters the model never saw: 'é', '☃' "
                               "(use --unknown replace to map them to <unk>)")
    assert tok.encode("cab", unknown="error") == [3, 1, 2]


def test_unknown_list_is_capped_to_stay_one_line():
    tok = CharTokenizer.train("a")
    with pytest.raises(VocabularyError) as info:
        tok.encode("bcdefghijklmn\n", unknown="error", what="corpus")
    message = str(info.value)
    assert message.startswith("corpus has characters") and "'\\n'" not in message
    assert "and 4 more" in message and "\n" not in message


def test_bad_unknown_mode_names_the_flag():
    with pytest.raises(ConfigError, match="--unknown"):
        CharTokenizer.train("abc").encode("a", unknown="ignore")


def test_ids_outside_the_vocabulary_are_refused():
    tok = CharTokenizer.train("abc")
    with pytest.raises(VocabularyError, match="token id 4 is outside the vocabulary of 4"):
        tok.decode([1, 4])
    with pytest.raises(VocabularyError):
        tok.token_text(-1)


def test_char_extend_keeps_existing_ids():
    tok = CharTokenizer.train("cab")
    wider = tok.extend("zebra!")
    assert wider.chars == ("a", "b", "c", "!", "e", "r", "z")
    assert wider.encode("cab") == tok.encode("cab") == [3, 1, 2]
    assert wider.encode("zebra!") == [7, 5, 2, 6, 1, 4]
    assert tok.extend("abc") == tok


def test_char_min_count_and_max_vocab():
    text = "aaaabbbcc d"
    assert CharTokenizer.train(text, min_count=2).chars == ("a", "b", "c")
    assert CharTokenizer.train(text, max_vocab=3).chars == ("a", "b")


@given(st.text(min_size=1))
def test_char_round_trip_on_any_unicode(text):
    tok = CharTokenizer.train(text)
    ids = tok.encode(text, unknown="error")
    assert 0 not in ids and max(ids) < tok.vocab_size
    assert tok.decode(ids) == text
    assert json_round_trip(tok).encode(text) == ids


# ------------------------------------------------------------------------------------------------ word


def test_word_tokens_of_ordinary_prose_carry_no_spacing_markers():
    text = "Mowgli, come!"
    tok = WordTokenizer.train(text)
    ids = tok.encode(text)
    assert [tok.token_text(i) for i in ids] == ["Mowgli", ",", "come", "!"]
    assert tok.decode(ids) == text


def test_word_markers_where_the_rule_is_wrong():
    text = "a+b  c\n    d "
    tok = WordTokenizer.train(text)
    shown = [tok.token_text(i) for i in tok.encode(text)]
    assert shown == ["a", GLUE, "+", GLUE, "b", "  ", "c", "\n", "    ", "d", " "]
    assert tok.decode(tok.encode(text)) == text


def test_word_quotes_alternate_and_curly_quotes_hug():
    text = 'He said "no" and (twice) “yes,” then—well-known—left.\n"Go!"'
    tok = WordTokenizer.train(text)
    ids = tok.encode(text)
    assert tok.glue_id not in ids and all(not tok.token_text(i).isspace() or tok.token_text(i) == "\n" for i in ids)
    assert tok.decode(ids) == text


def test_word_vocabulary_is_ranked_by_count_then_first_appearance():
    tok = WordTokenizer.train("b a b c a b\n")
    assert tok.word_index == {UNK: 0, GLUE: 1, "b": 2, "a": 3, "c": 4, "\n": 5}
    assert WordTokenizer.train("b a b c a b\n", max_vocab=4).word_index == {UNK: 0, GLUE: 1, "b": 2, "a": 3}
    assert WordTokenizer.train("b a b c a b\n", min_count=2).word_index == {UNK: 0, GLUE: 1, "b": 2, "a": 3}


def test_word_unknown_words_replace_or_error():
    tok = WordTokenizer.train("the wolf ran")
    assert tok.encode("the tiger ran") == [2, 0, 4]
    assert tok.decode([2, 0, 4]) == "the <unk> ran"
    assert tok.unknown_items("tiger the tiger, wolf!") == ["tiger", ",", "!"]
    with pytest.raises(VocabularyError) as info:
        tok.encode("the tiger ran", unknown="error")
    assert str(info.value) == "prompt has words the model never saw: 'tiger' (use --unknown replace to map them to <unk>)"


def test_unseen_whitespace_run_is_spelled_with_known_spaces():
    tok = WordTokenizer.train("a  b")  # knows the gap "  " but has no single-space token
    assert [tok.token_text(i) for i in tok.encode("a    b")] == ["a", "  ", "  ", "b"]
    assert tok.decode(tok.encode("a    b")) == "a    b"
    assert tok.unknown_items("a \t b") == [" ", "\t"]
    assert tok.encode("a \t b") == [2, 0, 0, 0, 4]


def test_word_lower():
    tok = WordTokenizer.train("The the THE", lower=True)
    assert tok.word_index == {UNK: 0, GLUE: 1, "the": 2}
    assert tok.decode(tok.encode("The THE")) == "the the"


def test_word_decode_streams_prefixes():
    text = '"Good hunting," said Kaa (softly).\n\nThen — silence.'
    tok = WordTokenizer.train(text)
    ids = tok.encode(text)
    full = tok.decode(ids)
    assert full == text
    for k in range(len(ids) + 1):
        assert full.startswith(tok.decode(ids[:k]))


def test_word_round_trip_on_the_jungle_book_with_few_markers(shared_data):
    text = read_corpus(shared_data / "jungle-book.txt")
    tok = WordTokenizer.train(text)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    markers = sum(1 for i in ids if i == tok.glue_id or tok.token_text(i).strip(" ") == "")
    assert len(ids) == 68_197 and markers == 303  # mostly indentation of verses; under 0.5% of tokens


WORDS = ["Mowgli", "the", "wolf", "don't", "Kaa’s", "Bagheera", "jungle", "1894", "naïve", "man-cub"]
MARKS = list(',.;:!?()[]"\'“”‘’-—/_…%$#&*+')
GAPS = [" ", "  ", "\t", "\n", "\n\n", "    "]


@given(st.lists(st.sampled_from(WORDS + MARKS + GAPS), min_size=1, max_size=40))
def test_word_round_trip_whatever_the_spacing(pieces):
    text = "".join(pieces)
    tok = WordTokenizer.train(text)
    ids = tok.encode(text, unknown="error")
    assert tok.decode(ids) == text
    assert json_round_trip(tok).encode(text) == ids


PROSE_VOCAB = WordTokenizer.train(" ".join(WORDS) + ' , ; : . ! ? ( ) " “ ” \n')


@st.composite
def english(draw):
    paragraphs = []
    for _ in range(draw(st.integers(1, 3))):
        sentences = []
        for _ in range(draw(st.integers(1, 3))):
            words = [w + draw(st.sampled_from(["", "", ",", ";", ":"]))
                     for w in draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))]
            words[-1] = words[-1].rstrip(",;:")
            if len(words) > 2 and draw(st.booleans()):
                words[1], words[-1] = "(" + words[1], words[-1] + ")"
            sentence = " ".join(words) + draw(st.sampled_from(".!?"))
            quote = draw(st.sampled_from(["", '"', "“"]))
            if quote:
                sentence = quote + sentence + {'"': '"', "“": "”"}[quote]
            sentences.append(sentence)
        paragraphs.append(" ".join(sentences))
    return draw(st.sampled_from(["\n", "\n\n"])).join(paragraphs)


@given(english())
def test_word_round_trip_of_english_prose_needs_no_markers(text):
    ids = PROSE_VOCAB.encode(text, unknown="error")
    assert PROSE_VOCAB.decode(ids) == text
    assert PROSE_VOCAB.glue_id not in ids
    assert all(PROSE_VOCAB.token_text(i) in WORDS or not PROSE_VOCAB.token_text(i).isspace()
               or PROSE_VOCAB.token_text(i) == "\n" for i in ids)


# ------------------------------------------------------------------------------------------------ keras


def test_keras_word_index_matches_keras():
    tok = build_tokenizer("Hello world. This is a simple LSTM example.", DataConfig(level="word", keras_compat=True))
    assert isinstance(tok, KerasWordTokenizer)
    assert tok.word_index == {"hello": 1, "world": 2, "this": 3, "is": 4, "a": 5, "simple": 6, "lstm": 7,
                              "example": 8}
    assert (tok.vocab_size, tok.pad_id, tok.unk_id) == (9, 0, None)
    assert tok.encode("This LSTM, a world!") == [3, 7, 5, 2]
    assert tok.decode([0, 0, 3, 7, 5, 2]) == "this lstm a world"


def test_keras_counts_num_words_and_oov_token():
    text = "the cat sat on the mat. The dog!"
    plain = KerasWordTokenizer.train(text)
    assert plain.word_index == {"the": 1, "cat": 2, "sat": 3, "on": 4, "mat": 5, "dog": 6}
    limited = KerasWordTokenizer.train(text, num_words=4)
    assert limited.vocab_size == 4 and limited.word_index == plain.word_index
    assert limited.encode("the dog sat") == [1, 3]  # dog (6) is beyond num_words: Keras drops it
    assert limited.unknown_items("the dog sat zebra") == ["dog", "zebra"]
    oov = KerasWordTokenizer.train(text, num_words=4, oov_token="<OOV>")
    assert oov.word_index["<OOV>"] == 1 and oov.word_index["the"] == 2 and oov.unk_id == 1
    assert oov.encode("the dog sat") == [2, 1, 1]
    assert oov.decode([2, 1, 3]) == "the <OOV> cat"


def test_keras_filters_and_apostrophes():
    tok = KerasWordTokenizer.train("Don't-stop\tme\nnow (please)")
    assert tok.word_index == {"don't": 1, "stop": 2, "me": 3, "now": 4, "please": 5}


def test_keras_min_count_is_refused():
    with pytest.raises(ConfigError, match="--min-count"):
        build_tokenizer("a b", DataConfig(level="word", keras_compat=True, min_count=2))


# ------------------------------------------------------------------------------------------------ bpe

BPE_TEXT = (
    "Now Chil the Kite brings home the night That Mang the Bat sets free--\n"
    "The herds are shut in byre and hut, For loosed till dawn are we.\n"
    "This is the hour of pride and power, Talon and tush and claw.\n"
    "Oh, hear the call!--Good hunting all That keep the Jungle Law!\n"
) * 8
BPE = BPETokenizer.train(BPE_TEXT, 300)


def test_bpe_learns_merges_and_never_has_unknowns():
    assert (BPE.kind, BPE.vocab_size, BPE.unk_id, BPE.pad_id) == ("bpe", 300, None, None)
    line = "Good hunting all That keep the Jungle Law!"
    assert len(BPE.encode(line)) < len(line.encode("utf-8")) * 2 // 3
    assert len(BPE.encode("\x00")) == 1 and BPE.unknown_items("☃ naïve") == []
    assert BPE.token_text(BPE.encode(" the")[0]) == " the"


def test_bpe_vocab_size_must_cover_the_bytes():
    with pytest.raises(ConfigError, match="--vocab-size must be at least 256"):
        build_tokenizer("some text", DataConfig(level="bpe", vocab_size=100))


@settings(max_examples=200)
@given(st.text())
def test_bpe_round_trip_on_any_unicode(text):
    assert BPE.decode(BPE.encode(text, unknown="error")) == text


# ---------------------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("config", [DataConfig(level="char"), DataConfig(level="word", lower=True),
                                    DataConfig(level="word", keras_compat=True, max_vocab=5),
                                    DataConfig(level="bpe", vocab_size=270)])
def test_save_and_load_give_the_same_tokenizer(tmp_path, config):
    tok = build_tokenizer(BPE_TEXT, config)
    save_tokenizer(tok, tmp_path / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert type(loaded) is type(tok) and loaded == tok
    data = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    assert data["format_version"] == 1 and data["kind"] == config.level
    sample = "Oh, hear the call! Talon and tush."
    assert loaded.encode(sample) == tok.encode(sample)
    assert loaded.decode(tok.encode(sample)) == tok.decode(tok.encode(sample))


def test_build_tokenizer_picks_the_level_and_refuses_empty_text():
    assert isinstance(build_tokenizer("ab", DataConfig(level="char")), CharTokenizer)
    word = build_tokenizer("a b a", DataConfig(level="word", max_vocab=3))
    assert type(word) is WordTokenizer and word.word_index == {UNK: 0, GLUE: 1, "a": 2}
    with pytest.raises(DataError, match="empty"):
        build_tokenizer("", DataConfig())


@pytest.mark.parametrize("content, message", [
    (None, "is missing"),
    ("{not json", "not valid JSON"),
    ('{"format_version": 2, "kind": "char", "chars": []}', "newer rnnlab"),
    ('{"format_version": 1, "kind": "morse"}', "unknown tokenizer kind 'morse'"),
    ('{"format_version": 1, "kind": "char", "chars": ["ab"]}', "char tokenizer data is malformed"),
    ('{"format_version": 1, "kind": "bpe", "hf_tokenizer": {"model": 3}}', "bpe tokenizer data is malformed"),
    ("[1, 2]", "not a JSON object"),
])
def test_load_refuses_missing_or_corrupt_files(tmp_path, content, message):
    path = tmp_path / "tokenizer.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelDirError, match=message):
        load_tokenizer(path)


def test_a_long_unseen_whitespace_run_is_spelled_in_linear_time():
    import time

    tok = WordTokenizer.train("a  b c")
    times = []
    for n in (20_000, 40_000):
        started = time.perf_counter()
        ids = tok.encode("a" + " " * (2 * n) + "b")
        times.append(time.perf_counter() - started)
        assert len(ids) == 2 + n and tok.decode(ids) == "a" + " " * (2 * n) + "b"
    # Twice the run, about twice the time (a cubic spelling took minutes at this length).
    assert times[1] < 6 * times[0] + 0.05, times


@settings(max_examples=60, deadline=None)
@given(known=st.text(min_size=1, max_size=40), text=st.text(max_size=300), cut=st.integers(0, 300))
def test_char_encode_chunks_gives_the_ids_of_encode(known, text, cut):
    """The table lookup of `prepare` (BMP texts through a 65,536-entry table, others through the full one)
    gives `encode`'s ids, unknown characters (also beyond the BMP) as <unk>."""
    import numpy as np

    tok = CharTokenizer.train(known)
    chunks = [text[:cut], text[cut:], "\U0001F600" + text[:5], "\ud800x"]  # an emoji; a lone surrogate
    ids = [list(a) for a in tok.encode_chunks(chunks)]
    assert ids == [tok.encode(c) for c in chunks]
    assert all(np.asarray(a).dtype.kind == "u" or not len(a) for a in tok.encode_chunks(chunks[:3]))
