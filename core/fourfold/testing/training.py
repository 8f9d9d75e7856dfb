"""The trainer and fine-tuner contracts: they save a model where asked, report progress,
return JSON-friendly metrics, can be run again on the same folder, and refuse input they
cannot learn from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fourfold.components import Component
from fourfold.sizing import TrainingWork
from fourfold.testing.base import ComponentContract, call, check_cost_profile, expect, label, type_name
from fourfold.testing.corpus import SAMPLE_DOCUMENTS
from fourfold.testing.models import tiny_causal_lm
from fourfold.types import TrainingResult

__all__ = ["TrainerContract", "FineTunerContract", "RecordingProgress"]


class RecordingProgress:
    """A :class:`fourfold.Progress` that remembers what it was told."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, int | None]] = []
        self.advanced = 0
        self.required = True

    @classmethod
    def any(cls) -> "RecordingProgress":
        """A progress that :func:`_check_result` does not require to be used (a resumed
        run may have nothing left to report)."""
        progress = cls()
        progress.required = False
        return progress

    def start(self, stage: str, total: int | None = None) -> None:
        self.stages.append((stage, total))

    def advance(self, n: int = 1) -> None:
        self.advanced += n


def _check_result(component: Component, result: Any, output_dir: Path, progress: RecordingProgress, method: str) -> TrainingResult:
    __tracebackhide__ = True
    expect(
        isinstance(result, TrainingResult),
        f"{label(component)}: {method}() returned {type_name(result)}; return fourfold.TrainingResult(output_dir=..., metrics={{...}})",
    )
    expect(
        Path(result.output_dir).resolve() == output_dir.resolve(),
        f"{label(component)}: {method}() saved to {result.output_dir}, not the output_dir it was given ({output_dir}); save there, fourfold registers that folder as the artifact",
    )
    expect(
        output_dir.is_dir() and any(output_dir.iterdir()),
        f"{label(component)}: {method}() left {output_dir} empty; save the model there",
    )
    try:
        json.dumps(result.metrics)
    except (TypeError, ValueError) as exc:
        pytest.fail(f"{label(component)}: TrainingResult.metrics is not JSON-serialisable ({exc}); use numbers and strings (float(x), not tensors)", pytrace=False)
    produces = getattr(type(component), "produces", result.kind)
    expect(
        result.kind == produces,
        f"{label(component)}: TrainingResult.kind is {result.kind!r} but the class says produces = {produces!r}; return kind={produces!r}",
    )
    expect(
        progress.stages or not progress.required,
        f"{label(component)}: {method}() never called progress.start(); report long work (progress.start(stage, total), progress.advance())",
    )
    if result.kind == "causal-lm":
        from transformers import AutoConfig

        try:
            AutoConfig.from_pretrained(output_dir)
        except Exception as exc:  # noqa: BLE001 - any failure means generators cannot load it
            pytest.fail(
                f"{label(component)}: the saved model in {output_dir} does not load with transformers ({type(exc).__name__}: {exc}); "
                "save with model.save_pretrained(output_dir) and tokenizer.save_pretrained(output_dir)",
                pytrace=False,
            )
    return result


def _check_declarations(component: Component) -> None:
    __tracebackhide__ = True
    produces = getattr(type(component), "produces", "causal-lm")
    expect(
        produces in ("causal-lm", "embedder", "claim-verifier"),
        f"{label(component)}: produces = {produces!r}; declare 'causal-lm', 'embedder' or 'claim-verifier'",
    )
    inputs = call(component, "inputs", fix="inputs() returns a JSON-serialisable dict") if hasattr(component, "inputs") else {}
    try:
        json.dumps(inputs)
    except (TypeError, ValueError) as exc:
        pytest.fail(f"{label(component)}: inputs() returned something not JSON-serialisable ({exc}); return hashes and names as str", pytrace=False)
    expect(isinstance(inputs, dict), f"{label(component)}: inputs() returned {type_name(inputs)}; return a dict")


class TrainerContract(ComponentContract):
    """Checks a :class:`fourfold.Trainer`. Give a ``config`` that trains for seconds, not
    minutes (few steps, a tiny model): the contract trains twice."""

    kind = "trainer"

    @pytest.fixture
    def texts(self) -> list[str]:
        """Domain text to train on."""
        return [d[4] for d in SAMPLE_DOCUMENTS] * 8

    def test_train_saves_a_model_and_resumes(self, component, texts, tmp_path):
        output_dir, work_dir = tmp_path / "model", tmp_path / "work"
        progress = RecordingProgress()
        result = call(
            component, "train", texts, output_dir, progress, work_dir=work_dir,
            fix="train(texts, output_dir, progress, work_dir=...) must save a model in output_dir and return a fourfold.TrainingResult",
        )
        _check_result(component, result, output_dir, progress, "train")
        # A worker that died mid-run reruns the task with the same work_dir.
        again = call(
            component, "train", texts, tmp_path / "model-again", RecordingProgress(), work_dir=work_dir,
            fix="train() with a work_dir left by an earlier run must resume from it or start over, not fail",
        )
        _check_result(component, again, tmp_path / "model-again", RecordingProgress.any(), "train")

    def test_declares_what_it_produces_and_its_inputs(self, component):
        _check_declarations(component)

    def test_describes_its_cost_or_none(self, component):
        check_cost_profile(component, TrainingWork)

    def test_training_without_text_raises(self, component, tmp_path):
        try:
            result = component.train([], tmp_path / "empty", RecordingProgress(), work_dir=tmp_path / "work")
        except Exception as exc:  # any exception with a message: the CLI shows it
            expect(str(exc).strip(), f"{label(component)}: train([]) raised {type(exc).__name__} with no message; say there is no text to train on")
            return
        pytest.fail(f"{label(component)}: train([]) returned {type_name(result)}; raise an exception saying there is no text to train on", pytrace=False)


class FineTunerContract(ComponentContract):
    """Checks a :class:`fourfold.FineTuner`. Its ``config`` usually names a base model and
    a data file: override the ``component_config`` fixture to write them into the
    context's ``base_dir`` (the manifest folder) and use the ``tiny_causal_lm`` fixture as
    the base model. The contract fine-tunes twice."""

    kind = "fine_tuner"

    @pytest.fixture
    def tiny_causal_lm(self) -> Path:
        """A tiny GPT-2 with its tokenizer, built once per test process."""
        return tiny_causal_lm()

    def test_fine_tune_saves_a_model_and_resumes(self, component, tmp_path):
        output_dir, work_dir = tmp_path / "tuned", tmp_path / "work"
        progress = RecordingProgress()
        result = call(
            component, "fine_tune", output_dir, progress, work_dir=work_dir,
            fix="fine_tune(output_dir, progress, work_dir=...) must save the result in output_dir and return a fourfold.TrainingResult",
        )
        _check_result(component, result, output_dir, progress, "fine_tune")
        again = call(
            component, "fine_tune", tmp_path / "tuned-again", RecordingProgress(), work_dir=work_dir,
            fix="fine_tune() with a work_dir left by an earlier run must resume from it or start over, not fail",
        )
        _check_result(component, again, tmp_path / "tuned-again", RecordingProgress.any(), "fine_tune")

    def test_describes_its_cost_or_none(self, component):
        check_cost_profile(component, TrainingWork)

    def test_declares_what_it_produces_and_its_inputs(self, component):
        _check_declarations(component)
        base = getattr(component, "base_model", None)
        expect(base is None or isinstance(base, str), f"{label(component)}: base_model is {base!r}; return the base model reference (str) or None")
