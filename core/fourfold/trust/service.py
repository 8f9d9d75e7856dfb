"""Each domain's answerability decision, per published index version.

The decision is calibrated once per version — by the worker right after it publishes,
or by the first reader that finds none — and stored beside the domain's other state as
``answerability/<version>.json`` or, when the index records are shared by several hosts,
as the version's ``answerability`` record, so every process answers alike.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from fourfold.evaluation.questions import eval_questions_for
from fourfold.index.layout import IndexLayout
from fourfold.trust.answerability import Answerability, Calibration, calibrate
from fourfold.trust.claims import ClaimVerifier
from fourfold.trust.verifier import load_claim_verifier

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["DomainTrust", "calibrate_domain"]

log = logging.getLogger("fourfold.trust")

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _eval_questions(domain: "Domain") -> list[str]:
    found = eval_questions_for(domain.manifest, purpose="trust")
    return [q.question for q in found.questions] if found else []


def calibrate_domain(domain: "Domain", *, save: bool = True) -> tuple[str, Answerability]:
    """Calibrate answerability for the domain's published version (and store it)."""
    version, chunks, total = domain.sample_chunks()

    def search(questions: list[str]):
        # One batch through the embedder instead of a query at a time (4-10x faster);
        # the retriever's own query embedding then finds each vector ready.
        embedder = domain.embedder
        try:
            vectors = embedder.embed_documents(questions)
        except Exception:  # noqa: BLE001 - then one query at a time
            return [domain.search(q)[0] for q in questions]
        ready = dict(zip(questions, vectors))
        original = embedder.embed_query
        embedder.embed_query = lambda text: ready[text] if text in ready else original(text)  # type: ignore[method-assign]
        try:
            return [domain.search(q)[0] for q in questions]
        finally:
            del embedder.embed_query

    calibration, frequencies = calibrate(chunks, search, version=version, answerable=_eval_questions(domain))
    calibration.corpus_chunks = max(calibration.corpus_chunks, len(chunks))
    result = Answerability(calibration, frequencies)
    if save:
        _store(domain, version, result)
    log.info(
        "domain '%s' version %s: answerability calibrated (threshold %.3f; refuses %.0f%% of unanswerable and %.0f%% of answerable calibration questions)",
        domain.name, version, calibration.threshold,
        100 * calibration.measured.get("refused_unanswerable", 0), 100 * calibration.measured.get("refused_answerable", 0),
    )
    return version, result


class DomainTrust:
    """The answerability decision of a domain's versions, loaded or calibrated on demand,
    and the domain's claim verifier."""

    def __init__(self, domain: "Domain", *, persist: bool = True):
        self._domain = domain
        self._persist = persist
        self._by_version: dict[str, Answerability] = {}
        self._verifier: ClaimVerifier | None = None
        self._verifier_lock = threading.Lock()

    def claim_verifier(self) -> ClaimVerifier:
        """The trained claim verifier of ``trust.verifier``, loaded on first use."""
        with self._verifier_lock:
            if self._verifier is None:
                self._verifier = load_claim_verifier(self._domain)
            return self._verifier

    @staticmethod
    def path_for(domain: "Domain", version: str) -> Path:
        return domain.state_dir / "answerability" / f"{version}.json"

    def for_version(self, version: str | None) -> Answerability | None:
        """The decision for ``version`` (None when answerability is off)."""
        setting = self._domain.manifest.trust.answerability
        if setting == "off" or version is None:
            return None
        fixed = float(setting) if isinstance(setting, (int, float)) and not isinstance(setting, bool) else None
        found = self._by_version.get(version)
        if found is not None:
            return found
        with _lock_for(f"{self._domain.state_dir}:{version}"):
            found = self._by_version.get(version)
            if found is not None:
                return found
            try:
                if not self._persist:
                    raise FileNotFoundError(version)
                found = _stored(self._domain, version, fixed)
            except (OSError, ValueError, KeyError):
                _, found = calibrate_domain(self._domain, save=self._persist)
                if fixed is not None:
                    found.threshold = fixed
            self._by_version = {version: found}  # older versions are no longer served here
            return found


def _shared_layout(domain: "Domain"):
    layout = IndexLayout.for_domain(domain)
    return layout if layout.shared else None


def _store(domain: "Domain", version: str, result: Answerability) -> None:
    layout = _shared_layout(domain)
    if layout is not None:
        layout.write_version_record(version, "answerability", result.to_json())
    else:
        result.save(DomainTrust.path_for(domain, version))


def _stored(domain: "Domain", version: str, threshold: float | None) -> Answerability:
    """The stored decision of ``version``; FileNotFoundError when there is none."""
    layout = _shared_layout(domain)
    if layout is None:
        return Answerability.load(DomainTrust.path_for(domain, version), threshold)
    data = layout.read_version_record(version, "answerability")
    if data is None:
        raise FileNotFoundError(f"answerability of {version} in {layout.describe()}")
    return Answerability.from_json(data, threshold, where=f"answerability of {version}")


def calibrate_after_publish(domain: "Domain", version: str | None) -> None:
    """Calibrate a version a background refresh just published, so that serving hosts
    load its decision instead of each calibrating it (best effort: a reader calibrates
    when this did not happen)."""
    if version is None or domain.manifest.trust.answerability == "off":
        return
    try:
        _stored(domain, version, None)
        return
    except (OSError, ValueError, KeyError):
        pass
    try:
        calibrate_domain(domain)
    except Exception:  # noqa: BLE001 - the refresh succeeded; readers calibrate on demand
        log.exception("domain '%s': calibrating answerability for %s failed; the first reader calibrates it", domain.name, version)
