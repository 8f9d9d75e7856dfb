"""The method advisor: what training from scratch, fine-tuning, prompting and retrieval
would cost for one domain, on this machine and on a reference accelerator.

- :func:`run_calibration` measures this machine (``fourfold calibrate``);
- :func:`advise` estimates every method for a domain and recommends a combination
  (``fourfold advise``); every figure carries its derivation (:class:`Figure`).

Components are sized only through what they describe of their own cost
(``cost_profile()`` and ``calibration_configs()``, part of the plugin API); one that
describes nothing is reported as one that cannot be sized.

``docs/choosing-a-method.md`` explains the cost model and its limits.
"""

from fourfold.advisor.accelerator import ACCELERATORS, DEFAULT_ACCELERATOR, Accelerator, accelerator
from fourfold.advisor.advise import Advice, AdviseOptions, advise
from fourfold.advisor.calibration import calibration_file, describe_machine, load_calibration, run_calibration
from fourfold.advisor.costs import CostLine, MethodCosts
from fourfold.advisor.figures import Figure, Input
from fourfold.advisor.profile import CorpusProfile
from fourfold.advisor.rates import MissingCalibration, Rates
from fourfold.advisor.resolve import NotSized, embedder_work
from fourfold.advisor.serving import ServingPlan, serving_per_question

__all__ = [
    "ACCELERATORS",
    "DEFAULT_ACCELERATOR",
    "Accelerator",
    "Advice",
    "AdviseOptions",
    "CorpusProfile",
    "CostLine",
    "Figure",
    "Input",
    "MethodCosts",
    "MissingCalibration",
    "NotSized",
    "Rates",
    "ServingPlan",
    "accelerator",
    "advise",
    "calibration_file",
    "describe_machine",
    "embedder_work",
    "load_calibration",
    "run_calibration",
    "serving_per_question",
]
