"""The method advisor: what training from scratch, fine-tuning, prompting and retrieval
would cost for one domain, on this machine and on a reference accelerator.

- :func:`run_calibration` measures this machine (``fourfold calibrate``);
- :func:`advise` estimates every method for a domain and recommends a combination
  (``fourfold advise``); every figure carries its derivation (:class:`Figure`).

``docs/choosing-a-method.md`` explains the cost model and its limits.
"""

from fourfold.advisor.accelerator import ACCELERATORS, DEFAULT_ACCELERATOR, Accelerator, accelerator
from fourfold.advisor.advise import Advice, AdviseOptions, advise
from fourfold.advisor.calibration import calibration_file, describe_machine, load_calibration, run_calibration
from fourfold.advisor.costs import CostLine, MethodCosts
from fourfold.advisor.figures import Figure, Input
from fourfold.advisor.rates import MissingCalibration, Rates

__all__ = [
    "ACCELERATORS",
    "DEFAULT_ACCELERATOR",
    "Accelerator",
    "Advice",
    "AdviseOptions",
    "CostLine",
    "Figure",
    "Input",
    "MethodCosts",
    "MissingCalibration",
    "Rates",
    "accelerator",
    "advise",
    "calibration_file",
    "describe_machine",
    "load_calibration",
    "run_calibration",
]
