"""The text stream of a generated row: pieces as tokens arrive, cut at the first stop string, whatever the
tokenizer (char rows take the O(1)-per-token path, word rows decode what came before)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.api import _TextStream
from rnnlab.data.tokenizers import CharTokenizer, WordTokenizer

CHARS = CharTokenizer.train("ab c\n")
TABLE = [CHARS.token_text(i) for i in range(CHARS.vocab_size)]


def expected(text: str, stop: str | None) -> str:
    if stop is None or stop not in text:
        return text
    return text[:text.index(stop) + len(stop)]


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.integers(1, CHARS.vocab_size - 1), max_size=40),
       stop=st.one_of(st.none(), st.text(alphabet="ab c\n", min_size=1, max_size=4)))
def test_a_char_stream_stops_exactly_after_the_first_stop_string(ids, stop):
    stream = _TextStream(CHARS, [], stop, TABLE)
    pieces = []
    for token in ids:
        pieces.append(stream.push(token))
        if stream.stopped:
            break
    text = CHARS.decode(ids)
    assert "".join(pieces) == stream.text == expected(text, stop)
    assert stream.stopped == (stop is not None and stop in text)


def test_a_word_stream_gives_the_decoded_text_piece_by_piece():
    words = WordTokenizer.train('He said "no". Then he ran\nhome, fast.')
    ids = words.encode('He said "no". Then he ran\nhome, fast.')
    stream = _TextStream(words, words.encode("He"), "ran")
    pieces = [stream.push(t) for t in ids[1:] if not stream.stopped]
    assert "".join(pieces) == stream.text == ' said "no". Then he ran'
