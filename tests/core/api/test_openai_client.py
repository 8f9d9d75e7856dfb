"""What a client built on the official ``openai`` package relies on: usage counts,
models.retrieve, max_tokens with finish_reason "length", response_format refused when it
cannot be honoured, per-message limits, and documented 400s."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

QUESTION = [{"role": "user", "content": "How much notice is needed to terminate the agreement?"}]


@pytest.fixture(scope="module")
def legal(served, live_url) -> OpenAI:
    return OpenAI(base_url=f"{live_url}/v1", api_key=served.token("legal"), max_retries=0, timeout=120)


def _integers(usage) -> None:
    assert isinstance(usage.prompt_tokens, int) and isinstance(usage.completion_tokens, int)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0


def test_a_completion_carries_the_generators_usage(legal):
    done = legal.chat.completions.create(model="legal", messages=QUESTION)
    _integers(done.usage)
    assert done.choices[0].finish_reason == "stop"
    # extractive counts words: what it produced is at least what the checked answer shows
    assert done.usage.completion_tokens >= len(done.choices[0].message.content.split()) - 2


def test_a_stream_with_include_usage_ends_with_a_usage_chunk(legal):
    chunks = list(legal.chat.completions.create(model="legal", messages=QUESTION, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    _integers(chunks[-1].usage)
    assert all(c.usage is None for c in chunks[:-1])
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]


def test_models_retrieve_names_the_domain(legal, served):
    card = legal.models.retrieve("legal")
    assert card.id == "legal" and card.object == "model"
    with pytest.raises(openai.NotFoundError):
        legal.models.retrieve("no-such-domain")
    with pytest.raises(openai.PermissionDeniedError):
        legal.models.retrieve("hr")


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_cuts_the_generator_and_says_length(legal, stream):
    if not stream:
        done = legal.chat.completions.create(model="legal", messages=QUESTION, max_tokens=4)
        assert done.choices[0].finish_reason == "length"
        assert done.usage.completion_tokens == 4
        return
    chunks = list(legal.chat.completions.create(model="legal", messages=QUESTION, max_tokens=4, stream=True, stream_options={"include_usage": True}))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].usage.completion_tokens == 4


def test_a_language_model_counts_its_tokens_and_stops_at_max_tokens(served, live_url):
    echo = OpenAI(base_url=f"{live_url}/v1", api_key=served.token("echo"), max_retries=0, timeout=120)
    done = echo.chat.completions.create(model="echo", messages=[{"role": "user", "content": "Say something."}], max_tokens=3)
    assert done.choices[0].finish_reason == "length"
    assert done.usage.completion_tokens == 3 and done.usage.prompt_tokens > 3
    assert done.model_extra["fourfold"]["usage"]["unit"] == "tokens"


def test_response_format_json_is_refused_and_text_is_accepted(legal):
    with pytest.raises(openai.BadRequestError) as refused:
        legal.chat.completions.create(model="legal", messages=QUESTION, response_format={"type": "json_object"})
    assert refused.value.body["param"] == "response_format" and "response_format" in refused.value.body["message"]
    done = legal.chat.completions.create(model="legal", messages=QUESTION, response_format={"type": "text"})
    assert done.choices[0].message.content


def test_each_chat_message_has_a_size_limit(legal):
    long = [{"role": "assistant", "content": "x " * 20_000}, *QUESTION]
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        legal.chat.completions.create(model="legal", messages=long)
    assert "messages.0.content" in refused.value.body["message"]


def test_a_body_that_is_not_utf8_is_a_documented_400(client, served):
    response = client.post(
        "/v1/chat/completions", content=b'{"model": "legal", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        headers={**served.auth("legal"), "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"]["message"]
    schema = client.get("/openapi.json").json()
    for path, method in [("/v1/chat/completions", "post"), ("/v1/domains/{domain}/ask", "post")]:
        assert "400" in schema["paths"][path][method]["responses"]
