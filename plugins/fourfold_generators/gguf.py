"""The shape of a GGUF model read from its header, without loading a weight: how
``smollm2`` describes its model before the GGUF is converted."""

from __future__ import annotations

import functools
import struct
from pathlib import Path
from typing import Any

import fourfold

__all__ = ["shape_from_gguf"]


def shape_from_gguf(path: Path) -> fourfold.ModelShape:
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
def _shape_from_gguf(path_text: str, size: int, mtime_ns: int) -> fourfold.ModelShape:
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
    return fourfold.ModelShape.from_config(config, total, source=f"{path.name}: GGUF header")
