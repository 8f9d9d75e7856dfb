"""A tiny causal language model saved on the fly, for testing fine-tuners and generators
without downloading anything."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from fourfold.testing.corpus import SAMPLE_DOCUMENTS

__all__ = ["make_tiny_causal_lm", "tiny_causal_lm"]

_lock = threading.Lock()
_cached: Path | None = None


def make_tiny_causal_lm(folder: Path, *, width: int = 32, layers: int = 1, vocab_size: int = 300, seed: int = 0) -> Path:
    """Save a randomly initialised GPT-2 (``width`` × ``layers``) with a byte-level BPE
    tokenizer trained on the sample documents into ``folder``; loadable with
    ``AutoModelForCausalLM`` / ``AutoTokenizer``. The weights depend only on ``seed``.
    Takes about a second."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([d[4] for d in SAMPLE_DOCUMENTS] * 4, vocab_size=vocab_size, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<|endoftext|>")
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_embd=width, n_layer=layers, n_head=2,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
    )
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the same weights in every process: reproducible outputs
        model = GPT2LMHeadModel(config)
    with torch.no_grad():
        # End-of-text never wins greedy decoding: a random model would otherwise stop
        # at once for some prompts and answer nothing.
        model.transformer.wte.weight[eos].zero_()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_causal_lm() -> Path:
    """A tiny causal LM shared by the whole test process (built once, in a temp folder)."""
    global _cached
    with _lock:
        if _cached is None or not (_cached / "config.json").is_file():
            _cached = make_tiny_causal_lm(Path(tempfile.mkdtemp(prefix="fourfold-tiny-lm-")))
        return _cached
