"""Answering: answers through the answer_question hook, streamed or whole;
failures name the component and plugin; a stream whose listener leaves stops the model."""

from __future__ import annotations

import textwrap
import threading

import pytest

import fourfold
from fourfold.plugins import PluginHost
from fourfold.answering import answer, stream_answer
from fourfold.settings import Settings

from .core_plugins import streaming_plugin


@pytest.fixture
def domain(tmp_path):
    settings = Settings(home=tmp_path / "home")
    host = PluginHost(settings, load_entry_points=False)
    host.register(streaming_plugin, name="streaming")
    path = tmp_path / "d.yaml"
    path.write_text(textwrap.dedent("""
        fourfold: 1
        domain: demo
        title: Demo
        embedding: {use: counting-embedder}
        prompt: {use: hiding-prompt}
        retrieval: {use: no-retriever}
        generation: {use: piece-generator, with: {pieces: ["Hello", " [1", "2] world", " SECRET", " done"]}}
    """))
    return fourfold.Domain(fourfold.load_manifest(path, host), host, settings)


def test_whole_answer_passes_through_finish(domain):
    result = answer(domain, "hi?")
    assert result.text == "Hello [12] world done"  # finish() drops SECRET
    assert result.domain == "demo" and result.index_version is None
    assert {"prompt_ms", "generate_ms", "total_ms"} <= set(result.timings)


def test_stream_yields_visible_text_then_the_answer(domain):
    items = list(stream_answer(domain, "hi?"))
    final = items[-1]
    assert isinstance(final, fourfold.Answer) and final.text == "Hello [12] world done"
    pieces = items[:-1]
    assert all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == "Hello [12] world"  # visible_text hid SECRET and what followed it
    assert "first_token_ms" in final.timings


def test_a_failing_generator_is_named_with_its_plugin(domain):
    domain.generator.config = domain.generator.Config(pieces=["a", "b"], fail_after=1)
    with pytest.raises(fourfold.ComponentError) as err:
        list(stream_answer(domain, "hi?"))
    assert str(err.value) == "generator 'piece-generator' (plugin 'streaming') in domain 'demo': stream() raised RuntimeError: backend lost"
    with pytest.raises(fourfold.ComponentError, match="plugin 'streaming'"):
        answer(domain, "hi?")


def test_closing_the_stream_stops_the_generator(domain):
    gate = threading.Event()
    domain.generator.config = domain.generator.Config(pieces=["one", " two", " three", " four"], gate_after=1)
    domain.generator.gate = gate
    stream = stream_answer(domain, "hi?")
    assert next(stream) == "one"
    stream.close()  # the client went away
    gate.set()
    assert domain.generator.closed.wait(10), "the generator was not closed"


class _Shouting:
    """A wrapper plugin: rewrites the question before, the answer after."""

    FOURFOLD_PLUGIN_API = "1.0"

    @fourfold.hookimpl(wrapper=True)
    def answer_question(self, request):
        request.question = request.question.strip() + "!"
        result = yield
        result.text = result.text.upper()
        result.flags.append(f"asked:{request.question}")
        return result


def test_wrappers_run_around_streamed_answers_too(domain):
    assert domain.host.register(_Shouting(), name="shouting").status == "loaded"
    items = list(stream_answer(domain, "hi? "))
    final = items[-1]
    assert final.text == "HELLO [12] WORLD DONE" and "asked:hi?!" in final.flags
    assert "".join(items[:-1]) == "Hello [12] world"  # streamed as generated; the final text is authoritative
