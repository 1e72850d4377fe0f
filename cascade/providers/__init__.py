"""Provider adapters, one per wire protocol, plus the offline simulated provider.

The adapters are imported on first use: the SDKs take seconds to import, and a cascade
that only uses one of them should not pay for the other.
"""

from __future__ import annotations

import importlib
from typing import Any

from cascade.protocols import Provider

_LAZY = {
    "AnthropicAdapter": "cascade.providers.anthropic",
    "OpenAIAdapter": "cascade.providers.openai",
    "SimulatedProvider": "cascade.providers.simulated",
}

__all__ = ["AnthropicAdapter", "OpenAIAdapter", "Provider", "SimulatedProvider"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
