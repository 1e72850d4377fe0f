"""cascade: send each LLM request to the cheapest model first, verify, escalate on failure."""

from cascade.accounting import Price
from cascade.config import CascadeConfig, load_config
from cascade.engine import Cascade
from cascade.errors import (
    CascadeError,
    ConfigError,
    ExhaustedError,
    PermanentProviderError,
    ProviderError,
    ProviderTimeout,
    TransientProviderError,
)
from cascade.events import StreamDelta, StreamRestart, StreamResult
from cascade.policy import StreamPolicy
from cascade.tiers import Tier, TierModel
from cascade.types import (
    Attempt,
    Candidate,
    Completion,
    CostReport,
    Message,
    Outcome,
    Request,
    Result,
    Usage,
    Verdict,
)
from cascade.verification import Verifier

__all__ = [
    "Attempt",
    "Candidate",
    "Cascade",
    "CascadeConfig",
    "CascadeError",
    "Completion",
    "ConfigError",
    "CostReport",
    "ExhaustedError",
    "Message",
    "Outcome",
    "PermanentProviderError",
    "Price",
    "ProviderError",
    "ProviderTimeout",
    "Request",
    "Result",
    "StreamDelta",
    "StreamPolicy",
    "StreamRestart",
    "StreamResult",
    "Tier",
    "TierModel",
    "TransientProviderError",
    "Usage",
    "Verdict",
    "Verifier",
    "load_config",
]
