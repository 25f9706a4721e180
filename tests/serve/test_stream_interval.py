"""Tokens go to a streaming client in batches (`--stream-interval-ms`), the first one at once."""

import json

import pytest

from rnnlab.serve.scheduler import Outbox


class _Loop:
    def __init__(self):
        self.calls = []

    def call_soon_threadsafe(self, fn, items):
        self.calls.append([event for _, event in items])


class _Job:
    def __init__(self, loop):
        self.loop = loop


def test_the_outbox_holds_ordinary_tokens_until_the_interval_and_sends_urgent_events_at_once():
    loop = _Loop()
    job = _Job(loop)
    outbox = Outbox(interval=3600)
    outbox.put(job, ("token", 0, "a", None), urgent=False)
    outbox.put(job, ("token", 0, "b", None), urgent=False)
    outbox.flush_if_due()
    assert loop.calls == []  # held: the interval has not passed
    outbox.put(job, ("finish", 0, "length"))  # urgent by default
    outbox.flush_if_due()
    assert loop.calls == [[("token", 0, "a", None), ("token", 0, "b", None), ("finish", 0, "length")]]
    outbox.put(job, ("token", 0, "c", None), urgent=False)
    outbox.flush_if_due()
    assert len(loop.calls) == 1  # the urgency was spent by the flush


def test_with_no_interval_every_token_goes_out_as_it_comes():
    loop = _Loop()
    outbox = Outbox(interval=0.0)
    for piece in "abc":
        outbox.put(_Job(loop), ("token", 0, piece, None), urgent=False)
        outbox.flush_if_due()
    assert [len(c) for c in loop.calls] == [1, 1, 1]


def _text_chunks(client, stream_body) -> list[str]:
    texts = []
    with client.stream("POST", "/v1/completions", json=stream_body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for choice in json.loads(line[len("data: "):])["choices"]:
                    if choice["text"]:
                        texts.append(choice["text"])
    return texts


@pytest.mark.parametrize("interval", [0.0, 3600.0])
def test_a_stream_gets_its_first_token_alone_and_the_rest_batched(char_model_dir, interval):
    from fastapi.testclient import TestClient

    import rnnlab
    from rnnlab.serve.app import create_app
    from rnnlab.serve.protocol import Limits

    app = create_app({"tiny": rnnlab.load(char_model_dir)}, limits=Limits(stream_interval=interval))
    body = {"prompt": "The", "max_tokens": 20, "seed": 3, "stream": True, "temperature": 1.0}
    with TestClient(app) as client:
        texts = _text_chunks(client, body)
        whole = client.post("/v1/completions", json={**body, "stream": False}).json()["choices"][0]["text"]
    # Batching changes how the text is cut into chunks, never the text.
    assert "".join(texts) == whole and len(whole) == 20
    if interval:  # the first token alone at once, the other 19 held until the finish, which goes at once
        assert [len(t) for t in texts] == [1, 19]


def test_a_first_text_read_late_still_goes_alone():
    """An HTTP side that reads the queue late (a loaded machine) finds the first token and later ones
    together: the first still goes out as a chunk of its own, the later ones merged."""
    from rnnlab.serve.app import _merge_pieces

    started: set[int] = set()
    late = [("token", 0, "", None), ("token", 0, "T", None), ("token", 0, "h", None), ("token", 1, "a", None),
            ("token", 0, "e", None), ("token", 1, "b", None), ("token", 1, "c", None), ("finish", 0, "length")]
    assert _merge_pieces(late, True, started) == [  # (an empty piece, a character's first byte, joins the text)
        ("token", 0, "T", None), ("token", 0, "h", None), ("token", 1, "a", None), ("token", 0, "e", None),
        ("token", 1, "bc", None), ("finish", 0, "length")]
    assert started == {0, 1}
    assert _merge_pieces([("token", 0, "x", None), ("token", 0, "y", None)], True, started) == [
        ("token", 0, "xy", None)]  # a choice under way: merged as before
    assert _merge_pieces(late, False, set()) == late  # per-token log-probabilities: never merged
