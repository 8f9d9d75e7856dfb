"""A small in-test plugin with one component of each kind, for wiring tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

import fourfold

FOURFOLD_PLUGIN_API = "1.0"


class ToyEmbedder(fourfold.Embedder):
    name = "toy-embedder"

    class Config(fourfold.ComponentConfig):
        dimension: int = Field(8, ge=2, le=64)

    @property
    def model_id(self) -> str:
        return f"toy-{self.config.dimension}"

    @property
    def dimension(self) -> int:
        return self.config.dimension

    def token_spans(self, text):
        import re

        return [m.span() for m in re.finditer(r"\S+", text)]

    def embed_documents(self, texts, progress=None):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            for word in t.lower().split():
                out[i, hash(word) % self.dimension] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


class ToyRetriever(fourfold.Retriever):
    name = "toy-retriever"

    class Config(fourfold.RetrieverConfig):
        mode: str = "words"

    def open_store(self):
        raise NotImplementedError

    def search(self, reader, query, *, top_k=None, filters=None):
        return []


class ToyPrompt(fourfold.PromptStrategy):
    name = "toy-prompt"
    uses_retrieval = False

    def build(self, question, passages, history):
        return fourfold.Prompt(messages=[fourfold.Message("user", question)], question=question)


class ToyGenerator(fourfold.Generator):
    name = "toy-generator"

    class Config(fourfold.ComponentConfig):
        reply: str = "toy answer"

    def generate(self, prompt, limits):
        return f"{self.config.reply}: {prompt.question}"


class ToyTrainer(fourfold.Trainer):
    name = "toy-trainer"

    class Config(fourfold.ComponentConfig):
        steps: int = Field(10, ge=1)

    def train(self, texts, output_dir: Path, progress, *, work_dir=None):
        return fourfold.TrainingResult(output_dir=output_dir)


class ToyFineTuner(fourfold.FineTuner):
    name = "toy-tuner"

    def fine_tune(self, output_dir: Path, progress, *, work_dir=None):
        return fourfold.TrainingResult(output_dir=output_dir)


class ToyLoader(fourfold.Loader):
    name = "toy-loader"
    extensions = ("toy",)

    def load(self, file):
        return fourfold.LoadedDocument(title=file.relpath, sections=[fourfold.Section(file.path.read_text())])


@fourfold.hookimpl
def register_embedders(register):
    register(ToyEmbedder)


@fourfold.hookimpl
def register_retrievers(register):
    register(ToyRetriever)


@fourfold.hookimpl
def register_prompt_strategies(register):
    register(ToyPrompt)


@fourfold.hookimpl
def register_generators(register):
    register(ToyGenerator)


@fourfold.hookimpl
def register_trainers(register):
    register(ToyTrainer)


@fourfold.hookimpl
def register_fine_tuners(register):
    register(ToyFineTuner)


@fourfold.hookimpl
def register_loaders(register):
    register(ToyLoader)


TOY_MANIFEST = """
fourfold: 1
domain: toy
title: Toy assistant
knowledge:
  sources:
    - path: knowledge
  chunking: {max_tokens: 64, overlap: 8}
embedding: {use: toy-embedder, with: {dimension: 16}}
training: {use: toy-trainer, with: {steps: 5}}
fine_tuning: {use: toy-tuner}
prompt: {use: toy-prompt}
retrieval: {use: toy-retriever, with: {top_k: 3}}
generation: {use: toy-generator, with: {reply: hello}}
"""
