"""A calibration record with plausible figures of a quiet two-core machine, so advice can
be tested without spending a minute measuring (the slow test calibrates for real)."""

from __future__ import annotations

import copy
import json

import pytest

CALIBRATION = {
    "format": 2,
    "created": "2026-01-01T00:00:00+00:00",
    "quick": False,
    "duration_s": 30.0,
    "machine": {"device": "cpu", "device_name": "Test CPU", "cpu": "Test CPU", "cores": 2, "torch_threads": 2, "gpu": None},
    "embedder": {"name": "minilm", "model_id": "minilm:test", "device": "cpu", "bf16": False, "load_s": 1.5, "texts": 64, "tokens": 9000,
                 "seconds": 2.25, "tokens_per_s": 4000.0, "padded_tokens": 10800, "padded_tokens_per_s": 4800.0, "mean_tokens_per_text": 140.6, "query_ms": 12.0},
    "store": {"retriever": "hybrid", "store_id": "qdrant-edge/test", "points": 1024, "write_s": 0.2, "points_per_s": 5000.0, "commit_s": 0.2, "open_s": 0.05, "search_ms": 15.0},
    "training": {"trainer": "causal-lm", "plugin": "fourfold_training", "points": [
        {"parameters": 119744, "compute_parameters": 115648, "flops_per_step": 3.68e8, "tokens_per_step": 512, "step_s": 0.05, "setup_s": 1.5,
         "eval_flops": 2.4e8, "heldout_tokens": 504, "loop_s": 1.2, "steps": 24, "config": {"width": 64, "layers": 1, "batch_size": 8, "context": 64}},
        {"parameters": 662784, "compute_parameters": 646400, "flops_per_step": 4.17e9, "tokens_per_step": 1024, "step_s": 0.15, "setup_s": 1.8,
         "eval_flops": 1.0e9, "heldout_tokens": 381, "loop_s": 1.8, "steps": 12, "config": {"width": 128, "layers": 2, "batch_size": 8, "context": 128}},
    ]},
    "fine_tuning": {"fine_tuner": "lora", "plugin": "fourfold_training", "base_parameters": 119744, "compute_parameters": 115648, "trainable_parameters": 8192, "steps": 8,
             "tokens_per_step": 256.0, "flops_per_step": 1.37e8, "step_s": 0.06, "setup_s": 1.0, "total_s": 1.5, "loop_s": 0.5, "heldout_tokens": 192},
    "generators": {
        "extractive": {"questions": 4, "passages": 4, "ms_per_question": 40.0},
        "transformers": {"parameters": 119744, "compute_parameters": 115648, "load_s": 0.05, "model_load_s": 0.05, "decode_tokens_per_s": 400.0},
        "smollm2": {"load_s": 0.4, "model_load_s": 0.4, "parameters": 134515008, "compute_parameters": 134515008, "prefill_tokens": 256,
                    "prefill_s": 0.64, "prefill_tokens_per_s": 400.0, "decode_tokens_per_s": 17.0,
                    "train_step": {"tokens": 256, "seconds": 3.5, "flops": 2.1e11, "flops_per_s": 6.0e10, "device": "cpu"}},
    },
    "disk": {"bytes": 67108864, "seconds": 0.13, "write_bytes_per_s": 500e6},
    "skipped": {},
}


@pytest.fixture
def calibration() -> dict:
    return copy.deepcopy(CALIBRATION)


@pytest.fixture
def calibrated(fourfold_home, calibration):
    """The calibration record stored in the test's state dir, as ``fourfold calibrate`` does."""
    (fourfold_home / "calibration.json").write_text(json.dumps(calibration))
    return calibration
