"""Domain text for causal language models: a BPE tokenizer trained on it, token blocks,
and a deterministic held-out slice."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

import fourfold

EOS = "<|endoftext|>"
PAD = "<|pad|>"

# The from-scratch model has no chat format of its own; this one is plain text, so the
# same words train it (LoRA on instruction pairs) and prompt it (the transformers
# generator applies the tokenizer's chat template).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "### {{ message['role'] | capitalize }}:\n{{ message['content'] }}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
)


def train_tokenizer(texts: Sequence[str], vocab_size: int, min_frequency: int, output_dir: Path):
    """Train a byte-level BPE tokenizer on ``texts`` and save it (transformers format)
    in ``output_dir``. Byte-level means any text can be encoded, seen or not."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=PAD, unk_token=EOS)
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 1_000_000
    fast.save_pretrained(output_dir)
    return fast


def token_blocks(texts: Sequence[str], tokenizer, block_size: int) -> torch.Tensor:
    """All texts tokenised, each ended by EOS, concatenated and cut into rows of
    ``block_size`` tokens (the incomplete tail is dropped)."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for encoded in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(encoded)
        ids.append(eos)
    n = len(ids) // block_size
    if n < 2:
        raise fourfold.TrainingError(
            f"the domain's knowledge gives only {len(ids)} tokens; training with context {block_size} needs "
            f"at least {2 * block_size} (add knowledge or lower 'context')"
        )
    return torch.tensor(ids[: n * block_size], dtype=torch.long).view(n, block_size)


def split_blocks(blocks: torch.Tensor, eval_fraction: float, max_eval_blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hold out every k-th block (k = 1/eval_fraction), at most ``max_eval_blocks``:
    deterministic, spread over the whole corpus, and the same on every re-run."""
    every = max(2, round(1 / eval_fraction))
    held = torch.zeros(len(blocks), dtype=torch.bool)
    held[every // 2 :: every] = True
    positions = held.nonzero().flatten()[:max_eval_blocks]
    held[:] = False
    held[positions] = True
    return blocks[~held], blocks[held]


class BlockDataset(Dataset):
    """Rows of token ids as causal-LM examples (labels = inputs; the model shifts)."""

    def __init__(self, blocks: torch.Tensor):
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = self.blocks[i]
        return {"input_ids": row, "labels": row}


def eval_batches(blocks: torch.Tensor, batch_size: int) -> list[dict[str, torch.Tensor]]:
    return [{"input_ids": blocks[i : i + batch_size], "labels": blocks[i : i + batch_size]} for i in range(0, len(blocks), batch_size)]
