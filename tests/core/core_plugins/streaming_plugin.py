"""An in-test plugin whose generator streams given pieces (and can fail or block)."""

from __future__ import annotations

import threading

import numpy as np
from pydantic import Field

import fourfold

FOURFOLD_PLUGIN_API = "1.0"


class CountingEmbedder(fourfold.Embedder):
    name = "counting-embedder"

    @property
    def model_id(self):
        return "counting"

    @property
    def dimension(self):
        return 2

    def token_spans(self, text):
        return [(0, len(text))]

    def embed_documents(self, texts, progress=None):
        return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)


class NoRetriever(fourfold.Retriever):
    name = "no-retriever"

    def open_store(self):
        raise NotImplementedError

    def search(self, reader, query, *, top_k=None, filters=None):
        return []


class HidingPrompt(fourfold.PromptStrategy):
    """No retrieval; hides everything from 'SECRET' on while streaming, drops the word at the end."""

    name = "hiding-prompt"
    uses_retrieval = False

    def build(self, question, passages, history):
        return fourfold.Prompt(messages=[fourfold.Message("user", question)], question=question)

    def finish(self, text, prompt):
        return text.replace(" SECRET", ""), [], []

    def visible_text(self, partial, prompt):
        return partial.split(" SECRET")[0]


class PieceGenerator(fourfold.Generator):
    name = "piece-generator"

    class Config(fourfold.ComponentConfig):
        pieces: list[str] = Field(default_factory=list)
        fail_after: int | None = None
        gate_after: int | None = None

    def __init__(self, config=None, context=None):
        super().__init__(config, context)
        self.closed = threading.Event()
        self.gate = threading.Event()

    def generate(self, prompt, limits):
        return "".join(self.stream(prompt, limits))

    def stream(self, prompt, limits):
        try:
            for i, piece in enumerate(self.config.pieces):
                if self.config.fail_after is not None and i >= self.config.fail_after:
                    raise RuntimeError("backend lost")
                if self.config.gate_after is not None and i >= self.config.gate_after:
                    self.gate.wait(10)
                yield piece
        finally:
            self.closed.set()


@fourfold.hookimpl
def register_embedders(register):
    register(CountingEmbedder)


@fourfold.hookimpl
def register_retrievers(register):
    register(NoRetriever)


@fourfold.hookimpl
def register_prompt_strategies(register):
    register(HidingPrompt)


@fourfold.hookimpl
def register_generators(register):
    register(PieceGenerator)
