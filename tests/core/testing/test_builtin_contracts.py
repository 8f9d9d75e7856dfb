"""Every builtin component passes its kind's contract tests.

The classes are parametrized over the host's registered builtin components, so a new
builtin is checked as soon as it is registered; one whose defaults cannot run in a test
needs an entry in CONFIGS (the test says so). Models load once per module: instances
are shared, the embedder is the real all-MiniLM-L6-v2, and the state dir (where
smollm2 is converted) is shared too.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from fourfold.plugins import PluginHost
from fourfold.settings import Settings
from fourfold.types import LoadedDocument, Section
from fourfold.testing import (
    SAMPLE_DOCUMENTS,
    EmbedderContract,
    FineTunerContract,
    GeneratorContract,
    LoaderContract,
    PromptStrategyContract,
    RetrieverContract,
    TrainerContract,
    build_version,
    make_context,
    tiny_causal_lm,
)

_HOST = PluginHost(Settings(), load_entry_points=True)


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path.name


_INSTRUCTIONS = [
    {"instruction": f"How often should {animal} be fed?", "response": f"Feed {animal} {times} a day."}
    for animal, times in [("cats", "twice"), ("kittens", "four times"), ("dogs", "twice"), ("puppies", "three times"), ("rabbits", "once"), ("hamsters", "once")]
]
_PAIRS = [
    {"question": f"What about {topic}?", "passage": text}
    for topic, text in [
        ("feeding cats", "Adult cats should be fed twice a day."),
        ("walking dogs", "Dogs need a walk at least twice daily."),
        ("green tea", "Green tea brews best with water at eighty degrees."),
        ("espresso", "An espresso shot uses nine bars of pressure."),
        ("bicycle brakes", "Adjust the brake cable until the pads grip the rim."),
        ("kettles", "Descale the kettle monthly with vinegar."),
        ("goldfish", "Goldfish aquarium water must be changed weekly."),
        ("tyres", "Inflate tyres to the pressure printed on the sidewall."),
    ]
]

_TINY_TRAINING = {"steps": 2, "save_every": 1, "warmup_steps": 0}

# Builtins whose defaults do not run in a test (they need data, a server, or would take
# minutes): (kind, name) -> function of the manifest folder returning the with: block.
CONFIGS: dict[tuple[str, str], Callable[[Path], dict[str, Any]]] = {
    ("trainer", "causal-lm"): lambda base: {
        **_TINY_TRAINING, "width": 32, "heads": 2, "layers": 1, "vocab_size": 300, "min_frequency": 1, "context": 32, "batch_size": 2,
    },
    ("fine_tuner", "lora"): lambda base: {
        **_TINY_TRAINING, "base": str(tiny_causal_lm()), "data": _write_jsonl(base / "sft.jsonl", _INSTRUCTIONS), "batch_size": 2, "max_length": 32,
    },
    ("fine_tuner", "full"): lambda base: {
        **_TINY_TRAINING, "base": str(tiny_causal_lm()), "data": _write_jsonl(base / "sft.jsonl", _INSTRUCTIONS), "batch_size": 2, "max_length": 32,
    },
    ("fine_tuner", "embedder-contrastive"): lambda base: {
        "steps": 2, "save_every": 1, "data": _write_jsonl(base / "pairs.jsonl", _PAIRS), "batch_size": 4, "max_passage_tokens": 32,
    },
    ("generator", "transformers"): lambda base: {"model": str(tiny_causal_lm())},
    ("prompt_strategy", "few-shot"): lambda base: {
        "examples": _write_jsonl(base / "examples.jsonl", [
            {"question": "How often should dogs be walked?", "answer": "At least twice daily [1].", "sources": ["guides/dogs.md"]},
            {"question": "How is green tea brewed?", "answer": "With water at eighty degrees for two minutes [1].", "sources": ["faq/tea.txt"]},
        ]),
    },
    ("fine_tuner", "verifier-cross-encoder"): lambda base: {"max_pairs": 24, "epochs": 1, "batch_size": 8, "max_tokens": 48, "eval_fraction": 0.2},
}

# Kinds and components whose contract runs load or train models.
SLOW_KINDS = {"trainer", "fine_tuner"}
SLOW = {("generator", "smollm2"), ("generator", "transformers"), ("generator", "openai-compatible")}


def _builtins(kind: str) -> list[Any]:
    params = []
    for name, spec in sorted(_HOST.components(kind).items()):
        if not _HOST.plugins[spec.plugin].builtin:
            continue
        marks = [pytest.mark.slow] if kind in SLOW_KINDS or (kind, name) in SLOW else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("builtin-contracts-home")


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory):
    """fourfold's own OpenAI-compatible API (``fourfold serve``) for a domain over the
    sample knowledge (bm25, plain prompt, extractive), for the openai-compatible generator
    to talk to."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    from fourfold.testing import write_sample_knowledge

    folder = tmp_path_factory.mktemp("openai-server")
    write_sample_knowledge(folder / "knowledge")
    manifest = folder / "domain.yaml"
    manifest.write_text(
        "fourfold: 1\ndomain: sample\ntitle: Sample\nknowledge: {sources: [{path: knowledge}]}\n"
        "retrieval: {use: bm25, with: {top_k: 3}}\ngeneration: {use: extractive}\nserve: {tokens_env: SAMPLE_TOKENS}\n"
        # plain: the served answer is the generator's text as is, so max_tokens checks the server
        "prompt: {use: plain}\n"
    )
    token = "contract-token-0123456789abcdef"
    env = {**os.environ, "FOURFOLD_HOME": str(folder / "home"), "SAMPLE_TOKENS": token, "HF_HUB_OFFLINE": "1"}
    built = subprocess.run([sys.executable, "-m", "fourfold", "index", "build", str(manifest)], env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "fourfold", "serve", str(manifest), "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        assert server.poll() is None, "fourfold serve exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "fourfold serve did not start"
        time.sleep(0.5)
    os.environ["FOURFOLD_CONTRACT_TOKEN"] = token
    yield {"base_url": f"{url}/v1", "model": "sample", "api_key_env": "FOURFOLD_CONTRACT_TOKEN"}
    os.environ.pop("FOURFOLD_CONTRACT_TOKEN", None)
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


_minilm: Any = None


def _sample_documents() -> list[LoadedDocument]:
    """The sample corpus as loaded documents, for fine-tuners that read the knowledge base."""
    return [LoadedDocument(title, [Section(text, (heading,))]) for _, title, heading, _, text in SAMPLE_DOCUMENTS]

_instances: dict[tuple[str, str, str], Any] = {}


class Builtin:
    """Mixin: the contract's fixtures, fed from the registered builtins."""

    @pytest.fixture
    def component_class_under_test(self, request):
        return _HOST.get(self.kind, request.param).cls

    @pytest.fixture
    def plugin_under_test(self, component_class_under_test):
        spec = _HOST.get(self.kind, component_class_under_test.name)
        return importlib.import_module(_HOST.plugins[spec.plugin].module)

    @pytest.fixture
    def embedder(self, tmp_path_factory):
        global _minilm
        if _minilm is None:
            spec = _HOST.get("embedder", "minilm")
            _minilm = spec.cls(spec.cls.Config(), make_context(tmp_path_factory.mktemp("minilm")))
        return _minilm

    @pytest.fixture
    def component_context(self, tmp_path, embedder, shared_home):
        return make_context(tmp_path, home=shared_home, embedder=lambda: embedder, knowledge_documents=lambda: _sample_documents)

    @pytest.fixture
    def component_config(self, component_class_under_test, component_context, request):
        key = (self.kind, component_class_under_test.name)
        if key == ("generator", "openai-compatible"):
            return dict(request.getfixturevalue("openai_server"))
        if key in CONFIGS:
            return CONFIGS[key](component_context.base_dir)
        if self.kind == "retriever":
            return {"top_k": 3}
        try:
            component_class_under_test.Config()
        except Exception as exc:  # noqa: BLE001 - any validation failure
            pytest.fail(f"builtin {key} has no usable default config ({exc}); add it to CONFIGS in {__name__}", pytrace=False)
        return {}

    @pytest.fixture
    def reader(self, component, embedder, chunks, tmp_path_factory):
        # One indexed version per retriever for the whole module (embedding it is the slow part).
        key = ("reader", component.name, "")
        if key not in _instances:
            _instances[key] = build_version(component, embedder, tmp_path_factory.mktemp("version") / "v000001", chunks)
        return _instances[key]

    @pytest.fixture
    def component(self, component_class_under_test, component_config, component_context):
        from fourfold.testing.base import build

        # Loading a model once per module keeps the suite fast; components hold no
        # per-request state, so sharing one instance between checks is what a domain does.
        if self.kind in SLOW_KINDS or self.kind == "loader":
            return build(component_class_under_test, component_config, component_context)
        key = (self.kind, component_class_under_test.name, json.dumps(component_config, sort_keys=True))
        if key not in _instances:
            _instances[key] = build(component_class_under_test, component_config, component_context)
        return _instances[key]


@pytest.mark.parametrize("component_class_under_test", _builtins("retriever"), indirect=True)
class TestBuiltinRetrievers(Builtin, RetrieverContract):
    pass


@pytest.mark.parametrize("component_class_under_test", _builtins("prompt_strategy"), indirect=True)
class TestBuiltinPromptStrategies(Builtin, PromptStrategyContract):
    pass


@pytest.mark.parametrize("component_class_under_test", _builtins("generator"), indirect=True)
class TestBuiltinGenerators(Builtin, GeneratorContract):
    pass


@pytest.mark.parametrize("component_class_under_test", _builtins("embedder"), indirect=True)
class TestBuiltinEmbedders(Builtin, EmbedderContract):
    pass


@pytest.mark.parametrize("component_class_under_test", _builtins("loader"), indirect=True)
class TestBuiltinLoaders(Builtin, LoaderContract):
    pass


@pytest.mark.parametrize("component_class_under_test", _builtins("trainer"), indirect=True)
class TestBuiltinTrainers(Builtin, TrainerContract):
    pass


@pytest.mark.parametrize("component_class_under_test", _builtins("fine_tuner"), indirect=True)
class TestBuiltinFineTuners(Builtin, FineTunerContract):
    pass


def test_every_kind_has_builtins_under_contract():
    for kind in ("retriever", "prompt_strategy", "generator", "embedder", "loader", "trainer", "fine_tuner"):
        assert _builtins(kind), f"no builtin {kind} is registered"
