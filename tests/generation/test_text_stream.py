"""The text stream of a generated row (generation/text_stream.py): pieces as tokens arrive, cut at the first
stop string, whatever the tokenizer, in O(1) per token."""

import time

from conftest import SHARED_DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data.corpus import read_corpus
from rnnlab.data.tokenizers import BPETokenizer, CharTokenizer, KerasWordTokenizer, WordTokenizer
from rnnlab.generation.text_stream import TextStream, decode_continuation

CHARS = CharTokenizer.train("ab c\n")
WORDS = WordTokenizer.train('He said "no". Then he ran\nhome, fast. a+b  c')


def expected(text: str, stops: list[str], include: bool) -> str:
    """What a stream that cannot look ahead must give: it stops where a stop string first ends (of two that
    end there, the one that starts first), so " " stops " a" before " a" can complete."""
    hits = [(text.index(s) + len(s), text.index(s), s) for s in stops if s in text]
    if not hits:
        return text
    _, at, stop = min(hits)
    return text[:at + len(stop)] if include else text[:at]


def run(stream: TextStream, ids: list[int]) -> list[str]:
    pieces = []
    for token in ids:
        pieces.append(stream.push(token))
        if stream.stopped:
            break
    pieces.append(stream.finish())
    return pieces


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.integers(1, CHARS.vocab_size - 1), max_size=40),
       stops=st.lists(st.text(alphabet="ab c\n", min_size=1, max_size=4), max_size=4),
       include=st.booleans())
def test_a_char_stream_stops_exactly_at_the_first_stop_string(ids, stops, include):
    stream = TextStream(CHARS, [], stops, include_stop=include)
    pieces = run(stream, ids)
    text = CHARS.decode(ids)
    assert "".join(pieces) == stream.text == expected(text, stops, include)
    assert stream.stopped == any(s in text for s in stops)


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(st.integers(0, WORDS.vocab_size - 1), max_size=30),
       stops=st.lists(st.sampled_from(["he", "no", " ", '"', "ran\nh", "fast."]), max_size=3))
def test_a_word_stream_is_the_decoded_text_after_its_context(ids, stops):
    context = WORDS.encode("He said")
    stream = TextStream(WORDS, context, stops, include_stop=False)
    pieces = run(stream, ids)
    text = WORDS.decode(context + ids)[len(WORDS.decode(context)):]
    assert "".join(pieces) == expected(text, stops, include=False)


def test_a_word_stream_gives_the_decoded_text_piece_by_piece():
    ids = WORDS.encode('He said "no". Then he ran\nhome, fast.')
    stream = TextStream(WORDS, WORDS.encode("He"), "ran")
    pieces = [stream.push(t) for t in ids[1:] if not stream.stopped]
    assert "".join(pieces) == stream.text == ' said "no". Then he ran'


def test_openai_stops_hold_back_what_may_begin_a_stop_and_leave_the_stop_out():
    stream = TextStream(CHARS, [], ["ab c", "cc"], include_stop=False)
    assert [stream.push(i) for i in CHARS.encode("aab ")] == ["", "a", "", ""]  # "ab " may begin "ab c"
    assert stream.push(CHARS.encode("b")[0]) == "ab b"  # it did not
    assert stream.push(CHARS.encode("c")[0]) == ""
    assert stream.push(CHARS.encode("c")[0]) == "" and stream.stopped
    assert stream.text == "aab b"


def test_a_bpe_character_split_across_tokens_comes_out_whole():
    text = "héllo wörld 日本語 " * 20
    bpe = BPETokenizer.train(text, 260)  # bytes only, nearly: multi-byte characters span tokens
    ids = bpe.encode("日本語 wörld")
    stream = TextStream(bpe, [])
    pieces = [stream.push(i) for i in ids] + [stream.finish()]
    assert "".join(pieces) == "日本語 wörld"
    assert all("\ufffd" not in p for p in pieces)
    cut = TextStream(bpe, [])
    assert "".join(cut.push(i) for i in bpe.encode("日")[:2]) == ""
    assert cut.finish() == bpe.decode(bpe.encode("日")[:2])  # what decode shows for a cut character


def test_every_tokenizer_streams_what_it_decodes():
    import random

    text = read_corpus(SHARED_DATA / "jungle-book.txt")[:8000] + ' "q" _x_ a+b  c\t\td — “q” 日本'
    rng = random.Random(0)
    for tokenizer in (CharTokenizer.train(text), WordTokenizer.train(text), BPETokenizer.train(text, 300),
                      KerasWordTokenizer.train(text)):
        for _ in range(50):
            ids = [rng.randrange(tokenizer.vocab_size) for _ in range(rng.randint(0, 40))]
            assert decode_continuation(tokenizer, [], ids) == (tokenizer.decode(ids), False), tokenizer.kind


def test_a_long_word_stream_costs_the_same_per_token_at_its_end():
    """50,000 tokens: linear, a fraction of a second; re-decoding the row per token (the old stream) would
    decode 1.25e9 tokens, hours."""
    text = read_corpus(SHARED_DATA / "jungle-book.txt")[:200_000]
    words = WordTokenizer.train(text)
    ids = words.encode(text)[:50_000]
    for tokenizer, row in ((words, ids), (BPETokenizer.train(text[:50_000], 400), None)):
        row = row or tokenizer.encode(text)[:50_000]
        start = time.perf_counter()
        stream = TextStream(tokenizer, [], ["never in the text \x00"], include_stop=False)
        for token in row:
            stream.push(token)
        stream.finish()
        assert time.perf_counter() - start < 10
        assert stream.text == tokenizer.decode(row)
