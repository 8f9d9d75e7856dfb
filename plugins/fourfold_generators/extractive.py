"""``extractive``: quote the retrieved sentences that answer the question best.

No language model: each passage is cut into sentences, the domain's embedder scores
them against the question, the question's words each holds add to its score (a word
few of the retrieved sentences hold weighs most: it tells the sentence that answers
from the many that name the topic), and the best few are quoted with their [n]
citation. It
cannot invent anything, answers in tens of milliseconds, and says plainly when nothing
relevant was retrieved.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from pydantic import Field, model_validator

import fourfold

__all__ = ["Extractive", "split_sentences"]

# Sentence ends: ".", "!" or "?" (not inside "e.g." / "2.5"), or a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# Markdown marks, list bullets, and clause numbers ("3.", "4)", "3.1 The …" — but not "2.5 mg").
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+•]\s+|\d{1,3}[.)]\s+|\d{1,3}(?:\.\d{1,3})+\.?\s+(?=[A-Z\"“(])|>\s*)")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|vs|no|art|sec|para|dr|mr|mrs|ms|st|fig|approx|incl)\.$", re.I)


def _blocks(text: str) -> list[str]:
    """Runs of text that read as one: paragraphs with hard-wrapped lines joined again;
    each list item is a block of its own; headings are left out (they name a topic,
    they answer nothing)."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        current = ""
        for line in paragraph.split("\n"):
            if not line.strip():
                continue
            bare = _MARKUP.sub("", line).strip()
            bullet = _BULLET.match(line) is not None
            heading = line.lstrip().startswith("#") or _is_shouting(bare) or (
                not current and not bullet and _looks_like_heading(bare)
            )
            if heading or bullet:
                if current:
                    blocks.append(current)
                current = "" if heading else bare
                continue
            current = f"{current} {bare}" if current else bare
        if current:
            blocks.append(current)
    return blocks


def split_sentences(text: str, *, min_chars: int = 25, max_chars: int = 400) -> list[str]:
    """Sentences of ``text``: markup stripped, hard-wrapped lines rejoined, headings
    left out; a sentence cut after an abbreviation ("e.g.") is joined again, fragments
    shorter than ``min_chars`` are dropped and very long sentences cut at ``max_chars``."""
    text = text.replace(fourfold.INSTRUCTION_REMOVED, "\n\n")  # a removed sentence ends the one before it
    out = []
    for block in _blocks(text):
        merged: list[str] = []
        for piece in _SENTENCE_END.split(block):
            piece = piece.strip()
            if not piece:
                continue
            if merged and (_ABBREVIATIONS.search(merged[-1]) or len(merged[-1]) < min_chars and not merged[-1].endswith(":")):
                merged[-1] = f"{merged[-1]} {piece}"
            else:
                merged.append(piece)
        for sentence in merged:
            sentence = re.sub(r"\s+", " ", sentence).strip()
            if len(sentence) < min_chars or not re.search(r"[A-Za-z]{3}", sentence):
                continue
            if len(sentence) > max_chars:
                cut = sentence.rfind(" ", 0, max_chars)
                sentence = sentence[: cut if cut > max_chars // 2 else max_chars].rstrip(",;: ") + "…"
            out.append(sentence)
    return out


def _is_shouting(line: str) -> bool:
    """An all-capitals line ("3. HOW THE CLAUSE WORKS") is a heading."""
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 4 and all(c.isupper() for c in letters)


def _looks_like_heading(line: str) -> bool:
    """A short line without sentence punctuation ("Termination for cause")."""
    return len(line.split()) <= 8 and not re.search(r"[.!?:;,]$", line) and not re.search(r"[.!?]\s", line)


class ExtractiveConfig(fourfold.ComponentConfig):
    max_sentences: int = Field(3, ge=1, le=20, description="Sentences quoted at most.")
    min_similarity: float = Field(
        0.35, ge=-1, le=1, description="A sentence less similar than this to the question is never quoted."
    )
    relative_margin: float = Field(
        0.15, ge=0, le=2, description="Quote only sentences within this margin of the best one's similarity, or of its score."
    )
    word_weight: float = Field(
        0.5, ge=0, le=2,
        description="Added to a sentence's similarity, times the share of the question's words it holds, each word "
        "weighted by how few of the retrieved sentences hold it (the sentence that says something specific about "
        "the question, not one of many that name its topic).",
    )
    kind_weight: float = Field(
        0.2, ge=0, le=1,
        description="Added to a sentence that states the kind of answer the question asks for (a duration for "
        "'how long', an age, an amount, a place for 'which state's law', a company for 'which company'); such a "
        "sentence may also be this much less similar than min_similarity.",
    )
    max_sentence_chars: int = Field(400, ge=50, le=4000, description="Longer sentences are cut.")
    max_candidates: int = Field(
        32, ge=1, le=1000,
        description="Sentences scored with the embedder at most; beyond this, those sharing the most words with the question (then from higher-ranked passages) are kept.",
    )
    format: str = Field(
        "quotes", pattern="^(quotes|bullets|prose)$", description="'quotes' (\"…\" [n] per line), 'bullets' or 'prose'."
    )
    nothing_retrieved: str = Field(
        "Nothing in the knowledge base matches this question.",
        min_length=1,
        description="Said when retrieval returned no passages.",
    )
    no_answer: str | None = Field(
        None,
        description="Said when passages were retrieved but no sentence answers the question "
        "(default: the prompt strategy's no-answer text).",
    )

    @model_validator(mode="after")
    def _check(self) -> "ExtractiveConfig":
        if self.min_similarity > 0.95:
            raise ValueError(f"min_similarity {self.min_similarity} would reject every sentence; use at most 0.95")
        return self


@dataclass
class _Candidate:
    n: int  # 1-based passage number
    position: int
    text: str
    similarity: float = 0.0
    rank: float = 0.0
    shared: float = 0.0  # share of the question's rarer words it holds
    typed: bool = False  # states the kind of answer asked for (fourfold.answer_kind)


class _VectorCache:
    """Sentence vectors by (embedder id, text): passages repeat across questions."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: list[str]) -> list[np.ndarray | None]:
        with self._lock:
            out = []
            for k in keys:
                v = self._data.get(k)
                if v is not None:
                    self._data.move_to_end(k)
                out.append(v)
            return out

    def put_many(self, items: list[tuple[str, np.ndarray]]) -> None:
        with self._lock:
            for k, v in items:
                self._data[k] = v
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class Extractive(fourfold.Generator):
    """Quotes the sentences of the retrieved passages most similar to the question
    (scored with the domain's embedder), each with its [n] citation. No LLM."""

    name = "extractive"
    description = "Quotes the most relevant retrieved sentences with [n] citations; fast, no language model."
    Config = ExtractiveConfig

    def __init__(self, config=None, context=None):
        super().__init__(config, context)
        self._cache = _VectorCache()

    def _embedder(self) -> fourfold.Embedder:
        if self.context is None:
            raise fourfold.ConfigError("the extractive generator needs a domain context for its embedder")
        return self.context.embedder()

    def prepare(self, progress) -> None:
        self._embedder().embed_query("warm up")

    def cost_profile(self) -> fourfold.GenerationWork:
        # No language model: its time per question is measured; its FLOPs are the
        # candidate sentences (about 40 tokens each) it embeds.
        return fourfold.GenerationWork(embedded_tokens_per_question=self.config.max_candidates * 40)

    @classmethod
    def calibration_configs(cls, model: str | None, *, quick: bool = False) -> list[dict]:
        return [{}]

    def select(self, prompt: fourfold.Prompt) -> list[_Candidate]:
        """The sentences to quote, best first."""
        cfg = self.config
        candidates: list[_Candidate] = []
        seen: set[str] = set()
        for n, passage in enumerate(prompt.passages, 1):
            # The prompt strategy may have removed planted instructions already (or not:
            # redact_instructions off, or a strategy that does not redact); none is quoted.
            text, _ = fourfold.remove_instructions(passage.chunk.text)
            for i, sentence in enumerate(split_sentences(text, max_chars=cfg.max_sentence_chars)):
                key = sentence.lower()
                if sentence.rstrip(" \"'”’)").endswith("?"):
                    continue  # a question (an FAQ heading) answers nothing
                if i == 0 and sentence[:1].islower():
                    continue  # the tail of a sentence cut at the chunk's start
                if key not in seen:  # overlapping chunks repeat sentences
                    seen.add(key)
                    candidates.append(_Candidate(n=n, position=i, text=sentence))
        if not candidates:
            return []
        if len(candidates) > cfg.max_candidates:
            # Bound the embedding work per question: keep the sentences sharing the most
            # words with the question, earlier passages first on ties.
            wanted = _words(prompt.question)
            candidates = sorted(candidates, key=lambda c: (-len(wanted & _words(c.text)), c.n, c.position))[: cfg.max_candidates]
        embedder = self._embedder()
        question = embedder.embed_query(prompt.question)
        # A web address names a page, it states nothing: its words ("…/tourette/…") do not
        # make a source line look like an answer.
        plain = [_LINK.sub(" ", c.text) for c in candidates]
        vectors = self._vectors(embedder, plain)
        sims = vectors @ np.asarray(question, dtype=np.float32)
        asked = fourfold.content_words(prompt.question)
        held = [fourfold.content_words(text) for text in plain]
        # Rarity of each question word among these sentences: when all of them name the
        # topic ("resolution", "EKG"), the one holding the rarer words ("lapses", "take")
        # is the one that answers.
        counts = {w: sum(1 for words in held if w in words) for w in asked}
        rarity = {w: math.log((len(held) + 1) / (n + 0.5)) for w, n in counts.items() if n}
        total = sum(rarity.values()) or 1.0
        kind = fourfold.answer_kind(prompt.question)
        focus = fourfold.answer_focus(prompt.question)  # "exercise" of "the exercise price"
        for c, s, words, text in zip(candidates, sims, held, plain):
            # The embedding decides; a sentence holding the question's rarer words, or
            # the kind of answer the question asks for (the duration of a "how long", the
            # state of a "which state's law"), wins a close call.
            shared = sum(rarity.get(w, 0.0) for w in words & asked) / total
            c.shared = shared
            c.typed = kind is not None and fourfold.states_answer_kind(text, kind) and focus <= words
            c.similarity = float(s)
            # A list item in lower case ("any burn you are unsure about") reads badly quoted alone.
            # "about 10 minutes" answers a "how long" better than "a few seconds" does.
            typed = (cfg.kind_weight if _PRECISE.search(text) else cfg.kind_weight / 2) if c.typed else 0.0
            c.rank = c.similarity + cfg.word_weight * shared + typed - (0.05 if c.text[:1].islower() else 0.0)
        ranked = sorted(candidates, key=lambda c: (-c.rank, c.n, c.position))
        if kind is not None and not ranked[0].typed:
            # The question asks for a kind of answer (a duration, a place…) that the
            # best-scored sentence does not state: the best one that does, and that holds
            # one of the question's rarer words, is quoted first.
            typed = [c for c in ranked if c.typed and c.shared > 0 and c.similarity >= cfg.min_similarity - cfg.kind_weight]
            if typed:
                ranked.remove(typed[0])
                ranked.insert(0, typed[0])
                typed[0].rank = ranked[1].rank if len(ranked) > 1 else typed[0].rank
        # Close enough to the best sentence by the embedding alone, or by the score.
        best_similarity = max(c.similarity for c in ranked)
        chosen: list[_Candidate] = []
        for c in ranked:
            if len(chosen) >= cfg.max_sentences:
                break
            close = c.similarity >= best_similarity - cfg.relative_margin or c.rank >= ranked[0].rank - cfg.relative_margin
            # A sentence stating what was asked for ("The entire test will take about 10
            # minutes" for "How long does an EKG take?") is often worded far from the
            # question; it may be quoted a little less similar than others.
            floor = cfg.min_similarity - (cfg.kind_weight if c.typed else 0.0)
            if c.similarity >= floor and close:
                chosen.append(c)
        return chosen

    def _vectors(self, embedder: fourfold.Embedder, texts: list[str]) -> np.ndarray:
        keys = [embedder.model_id + "\x00" + hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        cached = self._cache.get_many(keys)
        missing = [i for i, v in enumerate(cached) if v is None]
        if missing:
            fresh = embedder.embed_documents([texts[i] for i in missing])
            self._cache.put_many([(keys[i], np.asarray(fresh[j], dtype=np.float32)) for j, i in enumerate(missing)])
            for j, i in enumerate(missing):
                cached[i] = np.asarray(fresh[j], dtype=np.float32)
        return np.vstack(cached)  # type: ignore[arg-type]

    def pieces(self, prompt: fourfold.Prompt) -> Iterator[str]:
        cfg = self.config
        if not prompt.passages:
            yield cfg.nothing_retrieved
            return
        chosen = self.select(prompt)
        if not chosen:
            yield cfg.no_answer or prompt.metadata.get("no_answer") or "The retrieved documents do not answer this question."
            return
        for i, c in enumerate(chosen):
            text = c.text.rstrip()
            if cfg.format == "quotes":
                piece = f'"{text}" [{c.n}]'
            elif cfg.format == "bullets":
                piece = f"- {text} [{c.n}]"
            else:
                piece = _cite_inside(text, c.n)
            sep = " " if cfg.format == "prose" else "\n"
            yield piece if i == 0 else sep + piece

    def generate(self, prompt, limits):
        text, usage = "", None
        for piece in self.stream(prompt, limits):
            text += piece
            usage = getattr(piece, "usage", None) or usage
        return fourfold.GeneratedText(text, usage)

    def stream(self, prompt, limits):
        # limits.max_tokens caps the answer; an extractive answer's tokens are its words,
        # and so is its usage: the words of the question and passages it read, and of
        # the quotes it produced.
        budget = limits.max_tokens
        read = len(prompt.question.split()) + sum(len(p.chunk.text.split()) for p in prompt.passages)
        made, at_limit = 0, False
        pieces = list(self.pieces(prompt))
        for i, piece in enumerate(pieces):
            words = list(re.finditer(r"\S+", piece))
            if len(words) > budget or (len(words) == budget and i < len(pieces) - 1):
                if budget > 0:
                    yield piece[: words[budget - 1].end()]
                made += budget
                at_limit = True
                break
            budget -= len(words)
            made += len(words)
            yield piece
        yield fourfold.GeneratedText("", fourfold.GenerationUsage(read, made, at_limit, unit="words"))


_PRECISE = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred)\b", re.I)
_LINK = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
_COMMON = frozenset("the and for are how what which when does with that this from have can who why your you not".split())


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]{3,}", text.lower()) if w not in _COMMON}


def _cite_inside(sentence: str, n: int) -> str:
    m = re.match(r"^(.*?)([.!?…]*)$", sentence, re.S)
    assert m is not None
    return f"{m.group(1)} [{n}]{m.group(2)}"
