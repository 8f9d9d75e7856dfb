"""Answering you can trust: answerability before generating, claim checks after.

- :mod:`fourfold.trust.answerability` decides from the retrieved evidence whether the
  documents answer a question (calibrated per domain and index version);
- :mod:`fourfold.trust.claims` judges each answer sentence against the passages:
  supported, unsupported or contradicted;
- :mod:`fourfold.trust.verifier` loads the trained claim verifier a manifest names
  (``trust.verifier``), which judges contradictions beside or instead of the rules;
- :mod:`fourfold.trust.checker` applies those verdicts sentence by sentence, so that a
  stream shows only checked text.
"""

from fourfold.trust.checker import AnswerChecker, CheckPolicy, SentenceCheck, check_answer

__all__ = ["AnswerChecker", "CheckPolicy", "SentenceCheck", "check_answer"]
