"""corpus.read_ahead: the same items in the same order, the producer's errors raised in the consumer, and a
consumer that stops early stops the producer (no thread left running, the source not read to its end)."""

import threading

import pytest

from rnnlab.data.corpus import read_ahead
from rnnlab.errors import DataError


def test_the_same_items_in_order():
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(read_ahead(iter([]))) == []


def test_an_error_of_the_producer_is_raised_in_the_consumer_after_the_items_before_it():
    def items():
        yield "a"
        yield "b"
        raise DataError("corpus/x.txt is not UTF-8 text")

    seen = []
    with pytest.raises(DataError, match="not UTF-8"):
        for item in read_ahead(items()):
            seen.append(item)
    assert seen == ["a", "b"]


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    before = {t.ident for t in threading.enumerate()}
    stream = read_ahead(items(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert {t.ident for t in threading.enumerate()} <= before  # the producer has ended
    assert len(produced) < 10  # it ran at most a few items ahead


def test_the_producer_runs_in_another_thread():
    threads = []

    def items():
        for i in range(3):
            threads.append(threading.get_ident())
            yield i

    assert list(read_ahead(items())) == [0, 1, 2]
    assert set(threads) == {threads[0]} and threads[0] != threading.get_ident()
