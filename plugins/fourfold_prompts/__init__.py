"""Prompt strategies: grounded-citations, few-shot, step-by-step, plain.

Every retrieval-based strategy fences the passages as untrusted data, strips
instruction-like sentences from them, and checks the model's citations in code against
the passages actually retrieved.
"""

import fourfold

from .few_shot import FewShot
from .grounded import GroundedCitations
from .plain import Plain
from .step_by_step import StepByStep

FOURFOLD_PLUGIN_API = "1.4"

__all__ = ["GroundedCitations", "FewShot", "StepByStep", "Plain"]


@fourfold.hookimpl
def register_prompt_strategies(register):
    register(GroundedCitations)
    register(FewShot)
    register(StepByStep)
    register(Plain)
