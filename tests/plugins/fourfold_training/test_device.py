"""Where training runs: CUDA with bf16 whenever a GPU is present, the CPU otherwise.
(The CUDA branch is checked by faking the probe; no GPU is needed.)"""

from __future__ import annotations

import torch

from fourfold_training.hf import select_device


def test_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device = select_device()
    assert device.name == "cpu" and not device.bf16
    assert device.trainer_args() == {"use_cpu": True, "bf16": False}


def test_cuda_with_bf16_when_a_gpu_supports_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    device = select_device()
    assert device.name == "cuda" and device.bf16
    assert device.trainer_args() == {"use_cpu": False, "bf16": True}


def test_cuda_in_fp32_on_gpus_without_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert select_device().trainer_args() == {"use_cpu": False, "bf16": False}


def test_torch_threads_follow_the_settings(monkeypatch):
    import fourfold

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = torch.get_num_threads()
    try:
        select_device(fourfold.Settings(torch_threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
