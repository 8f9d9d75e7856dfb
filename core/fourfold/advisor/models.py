"""Model sizes and the FLOPs of training and running them.

Parameter counts come from the model itself when it exists (the tensor shapes in its
safetensors or GGUF header, read without loading any weight) and from the architecture's
formula when it does not exist yet (a ``causal-lm`` run not trained so far).

FLOPs per token (Kaplan et al. 2020, "Scaling laws for neural language models", §2.1):

- forward pass: ``2 · Nc`` for the weight products plus ``2 · L · T · d`` for attention
  over a context of ``T`` tokens (a decoder attends to half the sequence on average;
  an encoder attends to all of it, ``4 · L · T · d``);
- training (forward + backward): three times the forward, ``6 · Nc + 6 · L · T · d``;
- LoRA: the frozen weights need no weight gradients, which saves a third of the
  weight products: ``4 · Nc + 6 · Nlora`` plus the attention term.

``Nc`` counts the weights multiplied per token: every weight except lookup tables
(position embeddings, and the input embedding when it is not shared with the output
layer, whose product with the hidden state is real work).
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ModelShape",
    "gpt2_shape",
    "shape_from_config",
    "shape_from_folder",
    "shape_from_gguf",
    "count_safetensors_parameters",
]

LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3", "gemma", "phi3")


@dataclass(frozen=True)
class ModelShape:
    """What the cost model needs to know about a transformer.

    :ivar family: ``gpt2``, ``llama`` (and look-alikes), ``bert`` or ``unknown``.
    :ivar parameters: every weight.
    :ivar compute_parameters: weights multiplied per token (``Nc``).
    :ivar bytes_per_parameter: as held in memory when served (4: float32).
    :ivar source: where the figures come from.
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
        return self.width // max(self.heads, 1) * max(self.kv_heads, 1)

    @property
    def weight_bytes(self) -> int:
        return self.parameters * self.bytes_per_parameter

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # -- FLOPs ---------------------------------------------------------------------------

    def attention_flops_per_token(self, tokens_in_context: float, *, bidirectional: bool = False) -> float:
        return (4.0 if bidirectional else 2.0) * self.layers * tokens_in_context * self.width

    def forward_flops_per_token(self, tokens_in_context: float, *, bidirectional: bool = False) -> float:
        """``2 · Nc + 2 · L · T · d`` (``4 · L · T · d`` for an encoder)."""
        return 2.0 * self.compute_parameters + self.attention_flops_per_token(tokens_in_context, bidirectional=bidirectional)

    def training_flops_per_token(self, sequence: float) -> float:
        """``6 · Nc + 6 · L · T · d``."""
        return 6.0 * self.compute_parameters + 3.0 * self.attention_flops_per_token(sequence)

    def lora_flops_per_token(self, sequence: float, lora_parameters: int) -> float:
        """``4 · Nc + 6 · Nlora + 6 · L · T · d``."""
        return 4.0 * self.compute_parameters + 6.0 * lora_parameters + 3.0 * self.attention_flops_per_token(sequence)

    # -- LoRA ------------------------------------------------------------------------------

    def lora_parameters(self, rank: int) -> int:
        """Trainable parameters of rank-``rank`` adapters on the projections fourfold's
        ``lora`` fine-tuner adapts by default: ``r · (in + out)`` per adapted matrix."""
        d, L = self.width, self.layers
        if self.family == "gpt2":
            # c_attn d→3d, attn.c_proj d→d, c_fc d→4d, mlp.c_proj 4d→d
            per_layer = (d + 3 * d) + (d + d) + (d + 4 * d) + (4 * d + d)
        else:
            kv, ffn = self.kv_width, self.ffn or 4 * d
            # q, k, v, o, gate, up, down
            per_layer = (d + d) + 2 * (d + kv) + (d + d) + 2 * (d + ffn) + (ffn + d)
        return rank * L * per_layer


def gpt2_shape(*, vocab: int, width: int, layers: int, context: int, heads: int, source: str = "") -> ModelShape:
    """A GPT-2 as ``causal-lm`` builds it (tied embeddings, MLP 4·d):
    ``V·d + T·d + L·(12·d² + 13·d) + 2·d`` parameters."""
    d = width
    total = vocab * d + context * d + layers * (12 * d * d + 13 * d) + 2 * d
    compute = total - context * d  # position embeddings are a lookup
    return ModelShape("gpt2", total, compute, layers, width, context, vocab, heads, heads, 4 * d, True, 4, source or "GPT-2 formula")


def _llama_parameters(vocab: int, d: int, layers: int, kv: int, ffn: int, tied: bool) -> int:
    per_layer = d * (d + 2 * kv + d) + 3 * d * ffn + 2 * d
    return vocab * d * (1 if tied else 2) + layers * per_layer + d


def shape_from_config(config: dict[str, Any], parameters: int | None = None, *, source: str = "") -> ModelShape:
    """The shape described by a transformers ``config.json`` (``parameters``: the counted
    total, else computed from the architecture)."""
    kind = str(config.get("model_type") or "unknown")
    if kind == "gpt2":
        d, L = int(config["n_embd"]), int(config["n_layer"])
        shape = gpt2_shape(vocab=int(config["vocab_size"]), width=d, layers=L, context=int(config.get("n_positions", 1024)), heads=int(config.get("n_head", 1)), source=source)
        if parameters:
            shape = ModelShape(**{**shape.to_dict(), "parameters": parameters, "compute_parameters": parameters - shape.context * d})
        return shape
    if kind == "bert":
        d, L, ffn = int(config["hidden_size"]), int(config["num_hidden_layers"]), int(config["intermediate_size"])
        vocab, positions = int(config["vocab_size"]), int(config.get("max_position_embeddings", 512))
        compute = L * (4 * d * d + 2 * d * ffn + 9 * d + ffn)
        total = parameters or compute + (vocab + positions + int(config.get("type_vocab_size", 2))) * d + d * d + d
        return ModelShape("bert", int(total), int(compute), L, d, positions, vocab, int(config.get("num_attention_heads", 1)),
                          int(config.get("num_attention_heads", 1)), ffn, True, 4, source)
    d = int(config.get("hidden_size") or config.get("n_embd") or 0)
    L = int(config.get("num_hidden_layers") or config.get("n_layer") or 0)
    heads = int(config.get("num_attention_heads") or 1)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    ffn = int(config.get("intermediate_size") or 4 * d)
    vocab = int(config.get("vocab_size") or 0)
    tied = bool(config.get("tie_word_embeddings", kind not in LLAMA_LIKE))
    context = int(config.get("max_position_embeddings") or config.get("n_positions") or 2048)
    total = parameters or _llama_parameters(vocab, d, L, d // max(heads, 1) * kv_heads, ffn, tied)
    compute = total - (0 if tied else vocab * d)
    family = "llama" if kind in LLAMA_LIKE else "unknown"
    return ModelShape(family, int(total), int(compute), L, d, context, vocab, heads, kv_heads, ffn, tied, 4, source)


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


def shape_from_folder(folder: Path) -> ModelShape:
    """The shape of the transformers model saved in ``folder``.

    :raises FileNotFoundError: no ``config.json`` there.
    """
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    counted = count_safetensors_parameters(folder)
    source = f"{folder}: config.json" + (" and safetensors header" if counted else "")
    return shape_from_config(config, counted, source=source)


def shape_from_gguf(path: Path) -> ModelShape:
    """The shape of a GGUF model (a llama-style architecture) from its header (read once
    per process and file version: it takes seconds)."""
    stat = Path(path).stat()
    return _shape_from_gguf(str(path), stat.st_size, stat.st_mtime_ns)


# GGUF value types (gguf spec v2/v3) and the byte size of the fixed-size ones.
_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _read_gguf_header(path: Path) -> tuple[dict[str, Any], list[tuple[str, list[int]]]]:
    """Scalar metadata (arrays reduced to their length) and tensor shapes of a GGUF
    file, read straight from its header: the tokenizer's hundred thousand strings are
    skipped, not decoded, which keeps this well under a second."""
    with Path(path).open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        (version,) = struct.unpack("<I", fh.read(4))
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is not supported")
        n_tensors, n_kv = struct.unpack("<QQ", fh.read(16))

        def string() -> str:
            (n,) = struct.unpack("<Q", fh.read(8))
            return fh.read(n).decode("utf-8", errors="replace")

        def skip_or_read(kind: int) -> Any:
            if kind == _GGUF_STRING:
                return string()
            if kind == _GGUF_ARRAY:
                item, count = struct.unpack("<IQ", fh.read(12))
                if item == _GGUF_STRING:
                    for _ in range(count):
                        (n,) = struct.unpack("<Q", fh.read(8))
                        fh.seek(n, 1)
                elif item in _GGUF_SIZES:
                    fh.seek(count * _GGUF_SIZES[item], 1)
                else:
                    for _ in range(count):
                        skip_or_read(item)
                return count
            (value,) = struct.unpack(_GGUF_FORMATS[kind], fh.read(_GGUF_SIZES[kind]))
            return value

        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = string()
            (kind,) = struct.unpack("<I", fh.read(4))
            meta[key] = skip_or_read(kind)
        tensors = []
        for _ in range(n_tensors):
            name = string()
            (dims,) = struct.unpack("<I", fh.read(4))
            shape = list(struct.unpack(f"<{dims}Q", fh.read(8 * dims)))
            fh.read(12)  # type (u32) and offset (u64)
            tensors.append((name, shape))
    return meta, tensors


@functools.lru_cache(maxsize=8)
def _shape_from_gguf(path_text: str, size: int, mtime_ns: int) -> ModelShape:
    path = Path(path_text)
    meta, tensors = _read_gguf_header(path)
    arch = str(meta.get("general.architecture", "llama"))

    def field(name: str, default: Any = None) -> Any:
        return meta.get(f"{arch}.{name}", default)

    vocab = int(field("vocab_size", meta.get("tokenizer.ggml.tokens", 0)))
    heads = int(field("attention.head_count", 1))
    config = {
        "model_type": arch,
        "hidden_size": int(field("embedding_length")),
        "num_hidden_layers": int(field("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(field("attention.head_count_kv", heads)),
        "intermediate_size": int(field("feed_forward_length")),
        "max_position_embeddings": int(field("context_length", 2048)),
        "vocab_size": vocab,
        "tie_word_embeddings": not any(name == "output.weight" for name, _ in tensors),
    }
    total = 0
    for _, shape in tensors:
        n = 1
        for dim in shape:
            n *= dim
        total += n
    return shape_from_config(config, total, source=f"{path.name}: GGUF header")
