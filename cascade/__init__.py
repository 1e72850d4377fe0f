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
from cascade.protocols import (
    Calibratable,
    CallsModels,
    ChecksPartial,
    CleansOutput,
    Closable,
    ConfiguredProvider,
    CostsToCheck,
    PreparesRequest,
    Provider,
    StreamingProvider,
    Verifier,
)
from cascade.runtime.ladder import Tier, TierModel
from cascade.runtime.plan import CascadePlan

__all__ = [
    "Attempt",
    "Calibratable",
    "CallsModels",
    "Candidate",
    "Cascade",
    "CascadeConfig",
    "CascadeError",
    "CascadePlan",
    "ChecksPartial",
    "CleansOutput",
    "Closable",
    "Completion",
    "ConfigError",
    "ConfiguredProvider",
    "CostReport",
    "CostsToCheck",
    "ExhaustedError",
    "Message",
    "Outcome",
    "PermanentProviderError",
    "PreparesRequest",
    "Price",
    "Provider",
    "ProviderError",
    "ProviderTimeout",
    "Request",
    "Result",
    "StreamDelta",
    "StreamPolicy",
    "StreamRestart",
    "StreamResult",
    "StreamingProvider",
    "Tier",
    "TierModel",
    "TransientProviderError",
    "Usage",
    "Verdict",
    "Verifier",
    "load_config",
]
