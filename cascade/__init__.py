"""cascade: send each LLM request to the cheapest model first, verify, escalate on failure.

Besides the cascade itself, this is the surface plug-ins (verifiers, commands) build on:
`build_model` makes a priced model from a tier-shaped `model:` mapping, `call_model` asks it
with its retries and bills every try (a `ModelCall`), `most_tokens` counts text high
enough for budgets, and `load_recorded` reads a file of recorded outcomes (a `RecordedSet`).
A `Router` (`Cascade(tiers, router=...)`) picks where each request's ladder starts, as a `Route`.
`HashedNgrams` and `LogisticWeights` (with `LogisticTraining`, `HeldOut`, `ModelFormat`) are
the hashed text features and logistic regression of the models learned from such files.

Each name is imported on first use (PEP 562): `import cascade` stays light, and a program
that only needs `Request` or `ConfigError` does not load pydantic, the runtime or an SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cascade.config import CascadeConfig, load_config
    from cascade.config.build import build_model
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
    from cascade.core.hashed_text import HashedFeatures, HashedNgrams
    from cascade.core.logistic import (
        HeldOut,
        LogisticTraining,
        LogisticWeights,
        ModelFormat,
        held_out_groups,
        roc_auc,
    )
    from cascade.core.money import Price
    from cascade.core.policy import StreamPolicy
    from cascade.core.routes import Route
    from cascade.core.tokens import most_tokens
    from cascade.core.values import (
        Attempt,
        Candidate,
        Completion,
        CostReport,
        ForcedTool,
        Message,
        ModelCall,
        Outcome,
        Request,
        Result,
        Tool,
        ToolCall,
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
        Router,
        StreamingProvider,
        Verifier,
    )
    from cascade.providers.replay import RecordedSet, load_recorded
    from cascade.runtime.call import call_model
    from cascade.runtime.ladder import Tier, TierModel
    from cascade.runtime.plan import CascadePlan

# where each public name lives; `__getattr__` imports it from there the first time it is asked for
_HOMES: dict[str, tuple[str, ...]] = {
    "cascade.config": ("CascadeConfig", "load_config"),
    "cascade.config.build": ("build_model",),
    "cascade.core.errors": (
        "CascadeError",
        "ConfigError",
        "ExhaustedError",
        "PermanentProviderError",
        "ProviderError",
        "ProviderTimeout",
        "TransientProviderError",
    ),
    "cascade.core.events": (
        "StreamDelta",
        "StreamRestart",
        "StreamResult",
    ),
    "cascade.core.hashed_text": ("HashedFeatures", "HashedNgrams"),
    "cascade.core.logistic": (
        "HeldOut",
        "LogisticTraining",
        "LogisticWeights",
        "ModelFormat",
        "held_out_groups",
        "roc_auc",
    ),
    "cascade.core.money": ("Price",),
    "cascade.core.policy": ("StreamPolicy",),
    "cascade.core.routes": ("Route",),
    "cascade.core.tokens": ("most_tokens",),
    "cascade.core.values": (
        "Attempt",
        "Candidate",
        "Completion",
        "CostReport",
        "ForcedTool",
        "Message",
        "ModelCall",
        "Outcome",
        "Request",
        "Result",
        "Tool",
        "ToolCall",
        "Usage",
        "Verdict",
    ),
    "cascade.engine": ("Cascade",),
    "cascade.protocols": (
        "Calibratable",
        "CallsModels",
        "ChecksPartial",
        "CleansOutput",
        "Closable",
        "ConfiguredProvider",
        "CostsToCheck",
        "PreparesRequest",
        "Provider",
        "Router",
        "StreamingProvider",
        "Verifier",
    ),
    "cascade.providers.replay": ("RecordedSet", "load_recorded"),
    "cascade.runtime.call": ("call_model",),
    "cascade.runtime.ladder": ("Tier", "TierModel"),
    "cascade.runtime.plan": ("CascadePlan",),
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names}

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
    "ForcedTool",
    "HashedFeatures",
    "HashedNgrams",
    "HeldOut",
    "LogisticTraining",
    "LogisticWeights",
    "Message",
    "ModelCall",
    "ModelFormat",
    "Outcome",
    "PermanentProviderError",
    "PreparesRequest",
    "Price",
    "Provider",
    "ProviderError",
    "ProviderTimeout",
    "RecordedSet",
    "Request",
    "Result",
    "Route",
    "Router",
    "StreamDelta",
    "StreamPolicy",
    "StreamRestart",
    "StreamResult",
    "StreamingProvider",
    "Tier",
    "TierModel",
    "Tool",
    "ToolCall",
    "TransientProviderError",
    "Usage",
    "Verdict",
    "Verifier",
    "build_model",
    "call_model",
    "held_out_groups",
    "load_config",
    "load_recorded",
    "most_tokens",
    "roc_auc",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cascade' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
