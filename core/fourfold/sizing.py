"""How a component describes its cost, so that ``fourfold advise`` can size it.

A trainer, fine-tuner, embedder or generator answers ``cost_profile()`` with one of the
descriptions below, in the advisor's terms: the model it computes with (a
:class:`ModelShape`), how many sequences of how many tokens a step reads, how many steps
a run takes. The advisor turns that into FLOPs, and FLOPs into time with the rates
``fourfold calibrate`` measured on this machine. A component that returns None (the
default) is reported as one that cannot be sized; nothing is guessed from its settings.

FLOPs per token (Kaplan et al. 2020, "Scaling laws for neural language models", §2.1),
as :class:`ModelShape` computes them:

- forward pass: ``2 · Nc`` for the weight products plus ``2 · L · T · d`` for attention
  over a context of ``T`` tokens (a decoder attends to half the sequence on average;
  an encoder attends to all of it, ``4 · L · T · d``);
- training (forward + backward): three times the forward, ``6 · Nc + 6 · L · T · d``;
- LoRA: the frozen weights need no weight gradients, which saves a third of the
  weight products: ``4 · Nc + 6 · Nlora`` plus the attention term.

``Nc`` counts the weights multiplied per token: every weight except lookup tables
(position embeddings, and the input embedding when it is not shared with the output
layer, whose product with the hidden state is real work).

.. versionadded:: 1.4
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["ModelShape", "TrainingWork", "EmbeddingWork", "GenerationWork"]

LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3", "gemma", "phi3")


@dataclass(frozen=True)
class ModelShape:
    """A transformer's size, as the advisor's FLOP formulas need it.

    Build one with :meth:`from_folder` (a saved transformers model), :meth:`from_config`
    (a ``config.json`` as a dict) or :meth:`gpt2` (a GPT-2 not trained yet).

    :ivar family: ``gpt2``, ``llama`` (and look-alikes), ``bert`` or ``unknown``.
    :ivar parameters: every weight.
    :ivar compute_parameters: weights multiplied per token (``Nc``).
    :ivar layers: transformer blocks (``L``).
    :ivar width: hidden size (``d``).
    :ivar context: longest sequence the model reads, in tokens.
    :ivar vocab: vocabulary size.
    :ivar heads: attention heads.
    :ivar kv_heads: key/value heads (fewer than ``heads`` with grouped-query attention).
    :ivar ffn: inner size of the MLP.
    :ivar tied: whether the output layer shares the input embedding.
    :ivar bytes_per_parameter: as held in memory when served (4: float32).
    :ivar source: where the figures come from (shown in the advice's derivations).
    """

    family: str
    parameters: int
    compute_parameters: int
    layers: int
    width: int
    context: int
    vocab: int
    heads: int = 1
    kv_heads: int = 1
    ffn: int = 0
    tied: bool = True
    bytes_per_parameter: int = 4
    source: str = ""

    @property
    def kv_width(self) -> int:
        """Width of the key and value projections."""
        return self.width // max(self.heads, 1) * max(self.kv_heads, 1)

    @property
    def weight_bytes(self) -> int:
        """Bytes of the weights in memory."""
        return self.parameters * self.bytes_per_parameter

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    # -- FLOPs ---------------------------------------------------------------------------

    def attention_flops_per_token(self, tokens_in_context: float, *, bidirectional: bool = False) -> float:
        """``2 · L · T · d`` (``4 · L · T · d`` for an encoder)."""
        return (4.0 if bidirectional else 2.0) * self.layers * tokens_in_context * self.width

    def forward_flops_per_token(self, tokens_in_context: float, *, bidirectional: bool = False) -> float:
        """``2 · Nc + 2 · L · T · d`` (``4 · L · T · d`` for an encoder)."""
        return 2.0 * self.compute_parameters + self.attention_flops_per_token(tokens_in_context, bidirectional=bidirectional)

    def training_flops_per_token(self, sequence: float, *, bidirectional: bool = False) -> float:
        """``6 · Nc + 6 · L · T · d``: three forward passes' worth."""
        return 3.0 * self.forward_flops_per_token(sequence, bidirectional=bidirectional)

    def lora_flops_per_token(self, sequence: float, lora_parameters: int) -> float:
        """``4 · Nc + 6 · Nlora + 6 · L · T · d``."""
        return 4.0 * self.compute_parameters + 6.0 * lora_parameters + 3.0 * self.attention_flops_per_token(sequence)

    def lora_parameters(self, rank: int) -> int:
        """Trainable parameters of rank-``rank`` adapters on the attention and MLP
        projections: ``r · (in + out)`` per adapted matrix."""
        d, L = self.width, self.layers
        if self.family == "gpt2":
            # c_attn d→3d, attn.c_proj d→d, c_fc d→4d, mlp.c_proj 4d→d
            per_layer = (d + 3 * d) + (d + d) + (d + 4 * d) + (4 * d + d)
        else:
            kv, ffn = self.kv_width, self.ffn or 4 * d
            # q, k, v, o, gate, up, down
            per_layer = (d + d) + 2 * (d + kv) + (d + d) + 2 * (d + ffn) + (ffn + d)
        return rank * L * per_layer

    # -- building one ----------------------------------------------------------------------

    @classmethod
    def gpt2(cls, *, vocab: int, width: int, layers: int, context: int, heads: int, source: str = "") -> "ModelShape":
        """A GPT-2 (tied embeddings, MLP 4·d): ``V·d + T·d + L·(12·d² + 13·d) + 2·d``
        parameters."""
        d = width
        total = vocab * d + context * d + layers * (12 * d * d + 13 * d) + 2 * d
        compute = total - context * d  # position embeddings are a lookup
        return cls("gpt2", total, compute, layers, width, context, vocab, heads, heads, 4 * d, True, 4, source or "GPT-2 formula")

    @classmethod
    def from_config(cls, config: dict[str, Any], parameters: int | None = None, *, source: str = "") -> "ModelShape":
        """The shape a transformers ``config.json`` describes (``parameters``: the counted
        total, else computed from the architecture)."""
        kind = str(config.get("model_type") or "unknown")
        if kind == "gpt2":
            d = int(config["n_embd"])
            shape = cls.gpt2(vocab=int(config["vocab_size"]), width=d, layers=int(config["n_layer"]),
                             context=int(config.get("n_positions", 1024)), heads=int(config.get("n_head", 1)), source=source)
            if parameters:
                shape = cls(**{**shape.to_dict(), "parameters": parameters, "compute_parameters": parameters - shape.context * d})
            return shape
        if kind == "bert":
            d, L, ffn = int(config["hidden_size"]), int(config["num_hidden_layers"]), int(config["intermediate_size"])
            vocab, positions = int(config["vocab_size"]), int(config.get("max_position_embeddings", 512))
            compute = L * (4 * d * d + 2 * d * ffn + 9 * d + ffn)
            total = parameters or compute + (vocab + positions + int(config.get("type_vocab_size", 2))) * d + d * d + d
            heads = int(config.get("num_attention_heads", 1))
            return cls("bert", int(total), int(compute), L, d, positions, vocab, heads, heads, ffn, True, 4, source)
        d = int(config.get("hidden_size") or config.get("n_embd") or 0)
        L = int(config.get("num_hidden_layers") or config.get("n_layer") or 0)
        heads = int(config.get("num_attention_heads") or 1)
        kv_heads = int(config.get("num_key_value_heads") or heads)
        ffn = int(config.get("intermediate_size") or 4 * d)
        vocab = int(config.get("vocab_size") or 0)
        tied = bool(config.get("tie_word_embeddings", kind not in LLAMA_LIKE))
        context = int(config.get("max_position_embeddings") or config.get("n_positions") or 2048)
        kv = d // max(heads, 1) * kv_heads
        total = parameters or vocab * d * (1 if tied else 2) + L * (d * (d + 2 * kv + d) + 3 * d * ffn + 2 * d) + d
        compute = total - (0 if tied else vocab * d)
        family = "llama" if kind in LLAMA_LIKE else "unknown"
        return cls(family, int(total), int(compute), L, d, context, vocab, heads, kv_heads, ffn, tied, 4, source)

    @classmethod
    def from_folder(cls, folder: str | Path) -> "ModelShape":
        """The shape of the transformers model saved in ``folder``, its parameters counted
        from the safetensors headers (no weight is read).

        :raises FileNotFoundError: no ``config.json`` there.
        """
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        counted = count_safetensors_parameters(folder)
        source = f"{folder}: config.json" + (" and safetensors header" if counted else "")
        return cls.from_config(config, counted, source=source)


def count_safetensors_parameters(folder: Path) -> int | None:
    """Sum of the tensor sizes in ``folder``'s ``*.safetensors`` headers (no weight is read)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            n = 1
            for dim in info.get("shape", []):
                n *= int(dim)
            total += n
    return total


@dataclass(frozen=True)
class TrainingWork:
    """What one run of a trainer or fine-tuner computes (``cost_profile()`` of
    :class:`fourfold.Trainer` and :class:`fourfold.FineTuner`).

    The advisor prices a step as its FLOPs (sequences × tokens × FLOPs per token of the
    ``method``) at this machine's measured rate, plus the per-step overhead
    ``fourfold calibrate`` measured; a run is ``steps`` of them (or as many as fit in
    ``max_minutes``), plus loading, held-out evaluation and checkpoints.

    :ivar method: how a step spends FLOPs: ``"pretrain"`` (a causal LM trained on the
        domain's text packed into sequences of ``sequence_tokens``), ``"fine-tune"`` (a
        causal LM trained on examples, each as long as it is, at most
        ``sequence_tokens``, padded per batch; LoRA when ``adapter_rank`` is set) or
        ``"contrastive"`` (an encoder trained on (question, passage) pairs with in-batch
        negatives; passages at most ``sequence_tokens``).
    :ivar negatives_per_example: passages each example adds to its batch besides its own
        (``contrastive`` with hard negatives; at most this many).
    :ivar batch_size: sequences (examples, pairs) per optimiser step.
    :ivar sequence_tokens: tokens per sequence (``pretrain``), else the most an example
        or passage keeps.
    :ivar steps: optimiser steps configured (None: as many as fit in ``max_minutes``, or
        ``epochs`` passes).
    :ivar max_minutes: time budget that stops the run early (None: none).
    :ivar epochs: passes over the examples when ``steps`` is None.
    :ivar model: the model trained, when the component knows its shape (a model trained
        from scratch); None: ``base_model`` is sized by the advisor.
    :ivar base_model: the model a fine-tuner starts from (``artifact:NAME``, a folder
        relative to the manifest, or the name of a generator that ships its model);
        None with ``model`` None: the domain's embedder (``contrastive``) or nothing.
    :ivar examples_file: JSONL file of examples (string fields), when the run reads one;
        None: examples derived from the knowledge's sections.
    :ivar max_examples: most examples derived from the knowledge.
    :ivar held_out_fraction: share of the text or examples held out for evaluation.
    :ivar max_held_out: most held-out sequences (examples, passages) evaluated.
    :ivar adapter_rank: LoRA rank; None: every weight is trained.
    :ivar save_every: steps between checkpoints (None: none).
    """

    method: Literal["pretrain", "fine-tune", "contrastive"]
    batch_size: int
    sequence_tokens: int
    steps: int | None = None
    max_minutes: float | None = None
    epochs: float | None = None
    model: ModelShape | None = None
    base_model: str | None = None
    examples_file: Path | None = None
    max_examples: int | None = None
    held_out_fraction: float = 0.1
    max_held_out: int = 64
    adapter_rank: int | None = None
    save_every: int | None = None
    negatives_per_example: int = 0


@dataclass(frozen=True)
class EmbeddingWork:
    """What embedding costs (``cost_profile()`` of :class:`fourfold.Embedder`).

    :ivar batch_size: texts per forward pass; the advisor pads each batch of
        length-sorted texts to its longest, as an index build sends them.
    :ivar model: the encoder's shape, for FLOPs (None: FLOPs are reported unknown).
    """

    batch_size: int
    model: ModelShape | None = None


@dataclass(frozen=True)
class GenerationWork:
    """What answering one question costs (``cost_profile()`` of :class:`fourfold.Generator`).

    A generator with a model (``model`` or ``model_ref``) is priced as that model reading
    the prompt and writing the answer; one that runs elsewhere (``remote``) as the
    provider's business; one with neither by the time per question ``fourfold calibrate``
    measured for it.

    :ivar model: the shape of the language model it runs on this machine, when the
        generator knows it.
    :ivar model_ref: the model it runs as a reference the advisor sizes (``artifact:NAME``,
        a folder relative to the manifest), when ``model`` is None: the advisor also
        sizes models that a stage of the manifest has yet to produce.
    :ivar model_folder: where the model's tokenizer is, to count prompt tokens (None:
        characters / 4).
    :ivar max_tokens: most tokens an answer may have (None: no cap besides the request).
    :ivar chat: whether prompts go through the tokenizer's chat template when it has one.
    :ivar remote: whether the model runs elsewhere (an API); its cost is a price.
    :ivar embedded_tokens_per_question: tokens it embeds with the domain's embedder per
        question (e.g. candidate sentences), for FLOPs.
    """

    model: ModelShape | None = None
    model_ref: str | None = None
    model_folder: Path | None = None
    max_tokens: int | None = None
    chat: bool = True
    remote: bool = False
    embedded_tokens_per_question: int = 0
