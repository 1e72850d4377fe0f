"""`cascade calibrate`: verifier thresholds fitted to a quality target on recorded outcomes.

1. `observations`: every record is replayed once on every tier, alone, through the real
   engine with every verifier run.
2. `simulate`: for any cut-offs, the cascade is replayed in pure Python from those
   observations, every rule decided by `cascade.core.policy`, as the engine decides it.
3. `search`: cut-offs explored per calibratable verifier, exhaustively or by coordinate
   descent; `choose`: the cheapest setting that meets the `target` (with a confidence
   level, by its lower bound on a validation split).
4. `thresholds`: each cut-off written as a short decimal threshold that takes the same
   decisions on the data, into a copy of the config.
"""

from cascade.offline.calibration.bounds import binomial_lower_bound
from cascade.offline.calibration.choose import Calibration, calibrate
from cascade.offline.calibration.observations import Observations, observe
from cascade.offline.calibration.search import Explored
from cascade.offline.calibration.simulate import Simulated, Simulator
from cascade.offline.calibration.target import Target

__all__ = [
    "Calibration",
    "Explored",
    "Observations",
    "Simulated",
    "Simulator",
    "Target",
    "binomial_lower_bound",
    "calibrate",
    "observe",
]
