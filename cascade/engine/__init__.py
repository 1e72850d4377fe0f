"""The cascade: cheapest model first, verify, escalate only on failure, bill every attempt.

`Cascade` (`cascade.engine.facade`) is the facade; `cascade.engine.calls` prepares each call
and records its result.
"""

from cascade.engine.calls import Ask
from cascade.engine.facade import Cascade

__all__ = ["Ask", "Cascade"]
