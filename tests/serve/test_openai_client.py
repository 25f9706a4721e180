"""`rnnlab serve` as OpenAI's own Python client sees it: a live server on a loopback port."""

import concurrent.futures

import openai
import pytest


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=120)


def test_a_plain_completion(client):
    result = client.completions.create(model="char", prompt="Mowgli", max_tokens=20, seed=1)
    assert result.object == "text_completion" and result.model == "char"
    (choice,) = result.choices
    assert len(choice.text) == 20  # a char model: one character per token
    assert choice.finish_reason == "length" and choice.index == 0
    assert result.usage.completion_tokens == 20
    assert result.usage.prompt_tokens == len("\nMowgli")  # the start-of-text context, then the prompt
    assert result.usage.total_tokens == 20 + 7


def test_the_listed_models(client):
    assert sorted(m.id for m in client.models.list()) == ["char", "word"]


def test_a_streamed_completion_is_the_same_text_piece_by_piece(client):
    plain = client.completions.create(model="char", prompt="Baloo", max_tokens=2000, seed=4)
    chunks = list(client.completions.create(model="char", prompt="Baloo", max_tokens=2000, seed=4, stream=True,
                                            stream_options={"include_usage": True}))
    pieces = [c.choices[0].text for c in chunks if c.choices]
    # A chunk per decode step, or several tokens in one when the client reads slower than the model writes.
    assert len([p for p in pieces if p]) > 1
    assert "".join(pieces) == plain.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 2000


def test_n_choices_differ_and_are_numbered(client):
    result = client.completions.create(model="char", prompt="The", max_tokens=25, n=3, seed=2, temperature=1.0)
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert len({c.text for c in result.choices}) == 3
    assert result.usage.completion_tokens == 75


def test_a_list_of_prompts_with_echo(client):
    result = client.completions.create(model="char", prompt=["Akela", "Kaa"], max_tokens=5, n=2, echo=True,
                                       seed=0)
    assert [c.index for c in result.choices] == [0, 1, 2, 3]
    assert [c.text[:5] for c in result.choices[:2]] == ["Akela", "Akela"]
    assert [c.text[:3] for c in result.choices[2:]] == ["Kaa", "Kaa"]


def test_stop_strings_end_the_text_before_them(client):
    free = client.completions.create(model="char", prompt="Mowgli", max_tokens=200, seed=3).choices[0].text
    stop = free[10:12]  # two characters the free text holds, so the stopped one must end before them
    result = client.completions.create(model="char", prompt="Mowgli", max_tokens=200, seed=3, stop=[stop, "\x00"])
    (choice,) = result.choices
    assert choice.finish_reason == "stop"
    assert choice.text == free[:free.index(stop)]
    streamed = client.completions.create(model="char", prompt="Mowgli", max_tokens=200, seed=3, stop=stop,
                                         stream=True)
    assert "".join(c.choices[0].text for c in streamed) == choice.text


def test_a_seed_gives_the_same_text_alone_and_batched(client):
    def ask(seed, prompt="Shere Khan"):
        return client.completions.create(model="char", prompt=prompt, max_tokens=60, seed=seed,
                                         temperature=0.9, top_p=0.95).choices[0].text

    alone = ask(11)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        others = [pool.submit(ask, seed, "The jungle") for seed in range(5)]
        batched = pool.submit(ask, 11)
        assert batched.result() == alone
        assert len({o.result() for o in others}) == 5
    assert ask(12) != alone


def test_logprobs_list_up_to_five_alternatives(client):
    result = client.completions.create(model="char", prompt="Mowgli", max_tokens=6, logprobs=5, temperature=0)
    lp = result.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 6
    assert "".join(lp.tokens) == result.choices[0].text
    assert lp.text_offset == list(range(6))
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert len(top) == 5 and logprob <= 0
        assert max(top, key=top.get) == token  # greedy: the chosen token is the most likely one
        assert top[token] == pytest.approx(logprob)


def test_a_word_model_with_penalties(client):
    result = client.completions.create(model="word", prompt="Mowgli", max_tokens=30, temperature=0,
                                       frequency_penalty=2.0, presence_penalty=1.0)
    repeated = client.completions.create(model="word", prompt="Mowgli", max_tokens=30, temperature=0)
    words = result.choices[0].text.split()
    assert len(set(words)) > len(set(repeated.choices[0].text.split()))


def test_a_bad_temperature_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="char", prompt="x", temperature=3)
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == "temperature"
    assert "temperature must be a number from 0 to 2" in caught.value.body["message"]


def test_an_unknown_model_is_a_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.completions.create(model="gpt-4", prompt="x")
    assert caught.value.body["code"] == "model_not_found"
