"""The API on a real socket: the official ``openai`` client, and fourfold's own
``openai-compatible`` generator talking to it (contract included)."""

from __future__ import annotations

import pytest
from openai import OpenAI, PermissionDeniedError

import fourfold
from fourfold.testing import GeneratorContract
import fourfold_generators
from fourfold_generators import OpenAICompatible

from .conftest import LEGAL_DOCS

pytestmark = pytest.mark.integration

QUESTION = "How long is personal data kept?"


@pytest.fixture
def openai_client(live_url, served):
    return OpenAI(base_url=f"{live_url}/v1", api_key=served.token("legal"), max_retries=0, timeout=60)


def test_official_client_lists_the_tokens_domains(openai_client):
    assert [m.id for m in openai_client.models.list()] == ["legal"]


def test_official_client_non_streaming(openai_client):
    completion = openai_client.chat.completions.create(model="legal", messages=[{"role": "user", "content": QUESTION}])
    text = completion.choices[0].message.content
    assert "six years" in text or "seven years" in text
    citations = completion.model_extra["citations"]
    assert citations and citations[0]["source"] == "retention.md" and f"[{citations[0]['n']}]" in text
    assert {c["source"] for c in citations} <= set(LEGAL_DOCS)
    assert completion.model_extra["fourfold"]["index_version"].startswith("v")


def test_official_client_streaming(openai_client):
    stream = openai_client.chat.completions.create(model="legal", messages=[{"role": "user", "content": QUESTION}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "years" in text
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["citations"][0]["source"] == "retention.md"


def test_official_client_sees_403_for_another_domain(openai_client):
    with pytest.raises(PermissionDeniedError, match="does not open domain 'hr'"):
        openai_client.chat.completions.create(model="hr", messages=[{"role": "user", "content": "How much leave?"}])


# -- fourfold's openai-compatible generator against fourfold's API ----------------------


def remote(live_url: str, model: str, env: str) -> OpenAICompatible:
    config = OpenAICompatible.Config(base_url=f"{live_url}/v1", model=model, api_key_env=env, max_tokens=128)
    return OpenAICompatible(config, None)


def test_generator_asks_a_remote_server(live_url, served, monkeypatch):
    monkeypatch.setenv("LEGAL_API_KEY", served.token("legal"))
    generator = remote(live_url, "legal", "LEGAL_API_KEY")
    prompt = fourfold.Prompt(messages=[fourfold.Message("user", QUESTION)], question=QUESTION)
    whole = generator.generate(prompt, fourfold.GenerationLimits())
    pieces = list(generator.stream(prompt, fourfold.GenerationLimits()))
    assert "years" in whole and "".join(pieces).strip() == whole.strip()


def test_generator_reports_the_servers_usage_and_its_cut(live_url, served, monkeypatch):
    monkeypatch.setenv("LEGAL_API_KEY", served.token("legal"))
    generator = remote(live_url, "legal", "LEGAL_API_KEY")
    prompt = fourfold.Prompt(messages=[fourfold.Message("user", QUESTION)], question=QUESTION)
    whole = generator.generate(prompt, fourfold.GenerationLimits(max_tokens=3))
    assert whole.usage.stopped_at_limit and whole.usage.completion_tokens == 3 and whole.usage.unit == "tokens"
    full = generator.generate(prompt, fourfold.GenerationLimits())
    assert not full.usage.stopped_at_limit and full.usage.prompt_tokens > 0
    *_, last = generator.stream(prompt, fourfold.GenerationLimits(max_tokens=3))
    assert last.usage.stopped_at_limit  # finish_reason "length" read from the stream (no usage is streamed unasked)


def test_generator_reports_the_servers_error(live_url, monkeypatch):
    monkeypatch.setenv("LEGAL_API_KEY", "not-a-valid-token-0000000")
    generator = remote(live_url, "legal", "LEGAL_API_KEY")
    prompt = fourfold.Prompt(messages=[fourfold.Message("user", QUESTION)], question=QUESTION)
    with pytest.raises(RuntimeError, match="HTTP 401: unknown bearer token"):
        generator.generate(prompt, fourfold.GenerationLimits())
    with pytest.raises(RuntimeError, match="HTTP 401"):
        list(generator.stream(prompt, fourfold.GenerationLimits()))


def test_generator_needs_its_key_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(fourfold.ConfigError, match=r"\$NO_SUCH_KEY, which is not set"):
        remote("http://127.0.0.1:9", "x", "NO_SUCH_KEY")


class TestOpenAICompatibleContract(GeneratorContract):
    """The generator contract, against fourfold's API serving a small causal LM."""

    component_class = OpenAICompatible
    plugin = fourfold_generators

    @pytest.fixture
    def component_config(self, live_url, served, monkeypatch):
        monkeypatch.setenv("ECHO_API_KEY", served.token("echo"))
        return {"base_url": f"{live_url}/v1", "model": "echo", "api_key_env": "ECHO_API_KEY"}
