"""Loading and running a MiniLM-style sentence encoder: one shared copy per process.

Everything heavy (torch, transformers) is imported on first use, so importing the
plugin costs nothing to processes that never embed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

__all__ = ["EncoderModel", "TokenizerPair", "load_encoder", "load_tokenizers", "model_digest", "read_max_tokens"]

log = logging.getLogger("fourfold.minilm")

# Files whose content decides the vectors: weights, architecture, tokenizer, input length.
_IDENTITY_FILES = ("config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")

# Sentences of the kinds fourfold embeds (short queries, prose, numbers, mixed case,
# accents); used to check that bf16 autocast leaves vectors unchanged on this machine.
_CALIBRATION = (
    "what are the symptoms of type 2 diabetes?",
    "Section 4.2(b): The Licensee shall notify the Regulator within 14 days of any change.",
    "Chronic fatigue syndrome, or CFS, is a devastating and complex disorder. People with CFS "
    "have overwhelming fatigue and a host of other symptoms that are not improved by bed rest.",
    "Café naïve résumé — 3-hydroxyacyl-CoA dehydrogenase deficiency (HADH), 1,250 mg/dL.",
    "privacy policy: do you share my personal information with third parties for advertising?",
)
BF16_MIN_COSINE = 0.999

_lock = threading.Lock()
_digests: dict[tuple[str, int, int], str] = {}
_tokenizers: dict[str, "TokenizerPair"] = {}
_encoders: dict[tuple[str, str, bool], "EncoderModel"] = {}
_load_lock = threading.Lock()  # loading takes seconds: concurrent first calls load once
_threads_configured = False


# -------------------------------------------------------------------------
# identity
# -------------------------------------------------------------------------


def model_digest(folder: Path) -> str:
    """sha256 over the names and contents of the files that decide the vectors.

    Remembered per process by the files' size and modification time, so asking again
    costs a few ``stat`` calls rather than re-reading ~90 MB of weights.
    """
    files = sorted(p for p in folder.iterdir() if p.is_file() and (p.name in _IDENTITY_FILES or p.suffix in _WEIGHT_SUFFIXES))
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in files):
        raise FileNotFoundError(f"{folder} has no model weights (*.safetensors or *.bin)")
    total = hashlib.sha256()
    for path in files:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        with _lock:
            digest = _digests.get(key)
        if digest is None:
            with path.open("rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
            with _lock:
                _digests[key] = digest
        total.update(f"{path.name}\0{digest}\n".encode())
    return total.hexdigest()


def read_max_tokens(folder: Path) -> int:
    """The longest input the encoder was trained for: sentence-transformers'
    ``max_seq_length`` when present (256 for all-MiniLM-L6-v2, although BERT's position
    table has 512 entries), else the position table size."""
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        value = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return int(config.get("max_position_embeddings", 512))


# -------------------------------------------------------------------------
# tokenizers
# -------------------------------------------------------------------------


@dataclass
class TokenizerPair:
    """Two copies of the model's fast tokenizer with fixed settings.

    Setting truncation or padding on a fast tokenizer per call mutates it, which fails
    ("Already borrowed") when two threads share it. Configured once here, ``encode``
    only reads them, so they are safe to share.

    :ivar encoder: adds special tokens and truncates to ``max_tokens``; feeds the model.
    :ivar spanner: no special tokens, no truncation; gives character offsets.
    """

    encoder: "Tokenizer"
    spanner: "Tokenizer"
    pad_id: int
    max_tokens: int


def load_tokenizers(folder: Path, identity: str) -> TokenizerPair:
    """The process-wide tokenizers of ``folder`` as it is now (``identity``: its digest)."""
    key = identity
    with _lock:
        if key in _tokenizers:
            return _tokenizers[key]
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(folder))
    if not getattr(hf, "is_fast", False):
        raise ValueError(f"{folder} has no fast tokenizer (tokenizer.json); the minilm embedder needs one for offsets")
    max_tokens = read_max_tokens(folder)
    serialized = hf.backend_tokenizer.to_str()
    encoder = Tokenizer.from_str(serialized)
    encoder.no_padding()
    encoder.enable_truncation(max_length=max_tokens)
    spanner = Tokenizer.from_str(serialized)
    spanner.no_padding()
    spanner.no_truncation()
    pair = TokenizerPair(encoder=encoder, spanner=spanner, pad_id=int(hf.pad_token_id or 0), max_tokens=max_tokens)
    with _lock:
        return _tokenizers.setdefault(key, pair)


# -------------------------------------------------------------------------
# the encoder
# -------------------------------------------------------------------------


class EncoderModel:
    """A loaded transformer encoder: token ids in, mean-pooled L2-normalised vectors out."""

    def __init__(self, folder: Path, identity: str, device: str, want_bf16: bool):
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        self.folder = folder
        self.device = torch.device(device)
        self.tokens = load_tokenizers(folder, identity)
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a weight-loading bar per process is noise in logs
        try:
            self.model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).to(self.device).eval()
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self.dimension = int(self.model.config.hidden_size)
        self.bf16 = False
        if want_bf16 and _bf16_is_native(self.device):
            self.bf16 = self._bf16_leaves_vectors_unchanged()

    def _bf16_leaves_vectors_unchanged(self) -> bool:
        ids = [self.tokens.encoder.encode(t).ids for t in _CALIBRATION]
        exact = self.embed_ids(ids, batch_size=len(ids), bf16=False)
        fast = self.embed_ids(ids, batch_size=len(ids), bf16=True)
        worst = float(np.min(np.sum(exact * fast, axis=1)))
        if worst < BF16_MIN_COSINE:
            log.warning("bf16 autocast changes %s's vectors (cosine %.5f < %s); using float32", self.folder, worst, BF16_MIN_COSINE)
            return False
        return True

    def embed_ids(
        self,
        ids: Sequence[Sequence[int]],
        *,
        batch_size: int,
        bf16: bool | None = None,
        on_batch: Callable[[int], Any] | None = None,
    ) -> np.ndarray:
        """Vectors for already tokenized inputs, in input order.

        Inputs are embedded in batches of similar length (longest first, so the memory
        peak shows at once), which removes most padding: on real text this is ~3x
        faster than batching in input order, with the same vectors.
        """
        import torch

        n = len(ids)
        out = np.empty((n, self.dimension), dtype=np.float32)
        if n == 0:
            return out
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")  # stable: same input, same batches
        use_bf16 = self.bf16 if bf16 is None else bf16
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows[0]])
            input_ids = np.full((len(rows), width), self.tokens.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                input_ids[r, : lengths[i]] = ids[i]
                mask[r, : lengths[i]] = 1
            vectors = self._forward(torch.from_numpy(input_ids), torch.from_numpy(mask), use_bf16)
            out[rows] = vectors
            if on_batch is not None:
                on_batch(len(rows))
        return out

    def _forward(self, input_ids: "torch.Tensor", mask: "torch.Tensor", bf16: bool) -> np.ndarray:
        import torch

        input_ids = input_ids.to(self.device, non_blocking=True)
        mask = mask.to(self.device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        with torch.inference_mode():
            hidden = hidden.float()
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * weights).sum(dim=1)
            mean = summed / weights.sum(dim=1).clamp(min=1e-9)
            vectors = torch.nn.functional.normalize(mean, p=2, dim=1)
            return vectors.cpu().numpy()


def _bf16_is_native(device: "torch.device") -> bool:
    """bf16 pays only where the hardware computes it; elsewhere it is emulated and slower."""
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    return False


def configure_threads(torch_threads: int | None) -> None:
    """Give torch the cores and keep OpenBLAS out of its way, once per process.

    numpy's OpenBLAS keeps its worker threads spinning after each call; on a 2-core
    machine they steal torch's cores and triple query tail latency. fourfold's numpy
    work is small (normalising, a few dot products), so one BLAS thread costs nothing.
    """
    global _threads_configured
    with _lock:
        if _threads_configured:
            return
        _threads_configured = True
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    wanted = torch_threads or cores
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    try:
        from threadpoolctl import ThreadpoolController

        ThreadpoolController().select(internal_api="openblas").limit(limits=1)
    except Exception as exc:  # an unusual BLAS build is no reason to refuse to embed
        log.debug("could not limit OpenBLAS threads: %s", exc)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(folder: Path, identity: str, *, device: str | None, bf16: bool, torch_threads: int | None) -> EncoderModel:
    """The process-wide encoder for ``folder`` (loaded on first call, then shared).

    Keyed by ``identity`` (the weights' digest), so weights replaced in place are loaded
    afresh rather than served from the old copy.
    """
    configure_threads(torch_threads)
    device = device or default_device()
    key = (identity, device, bf16)
    with _lock:
        encoder = _encoders.get(key)
    if encoder is not None:
        return encoder
    with _load_lock:
        with _lock:
            encoder = _encoders.get(key)
        if encoder is None:
            encoder = EncoderModel(folder, identity, device, bf16)
            with _lock:
                _encoders[key] = encoder
    return encoder
