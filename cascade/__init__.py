"""cascade: send each LLM request to the cheapest model first, verify, escalate on failure."""

from cascade.config import CascadeConfig, load_config
from cascade.core.errors import (
    CascadeError,
    ConfigError,
    ExhaustedError,
    PermanentProviderError,
    ProviderError,
    ProviderTimeout,
    TransientProviderError,
)
from cascade.core.events import StreamDelta, StreamRestart, StreamResult
from cascade.core.money import Price
from cascade.core.policy import StreamPolicy
from cascade.core.values import (
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
from cascade.engine import Cascade
from cascade.runtime.ladder import Tier, TierModel
from cascade.verification.chain import Verifier

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
