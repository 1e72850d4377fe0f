"""`cascade calibrate`: the tiers to keep and the verifier thresholds, fitted to a quality
target on recorded outcomes (docs/calibration.md).

1. `observations`: every record is replayed once on every tier, alone, through the real
   engine with every verifier run.
2. `simulate`: for any sub-ladder and cut-offs, the cascade is replayed in pure Python
   from those observations, every rule decided by `cascade.core.policy`, as the engine
   decides it.
3. `search`: the sub-ladders, and the cut-offs explored per calibratable verifier,
   exhaustively or by coordinate descent; `choose`: the cheapest setting that meets the
   `target` on the data, or, with a confidence level, the cheapest that `certify`
   certifies on unseen data (`bounds` for the tests, `reliability` for the scores read as
   probabilities).
4. `thresholds`: the chosen setting written into a copy of the config; `report` and
   `curves`: what is printed and drawn of it.
"""

from cascade.core.binomial import binomial_lower_bound
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
