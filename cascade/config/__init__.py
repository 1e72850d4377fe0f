"""A cascade's configuration: the pydantic schema and the YAML loader.

`cascade.config.build` (which turns a config into a runnable plan) is imported on its own:
it sits above the runtime, while the schema sits below it.
"""

from cascade.config.load import load_config, parse_config
from cascade.config.schema import (
    DEFAULT_KEY_ENV,
    DEFAULT_REASK_PROMPT,
    CascadeConfig,
    ModelConfig,
    PriceConfig,
    RateLimitConfig,
    RetryConfig,
    StreamConfig,
    TierConfig,
    VerifierConfig,
)

__all__ = [
    "DEFAULT_KEY_ENV",
    "DEFAULT_REASK_PROMPT",
    "CascadeConfig",
    "ModelConfig",
    "PriceConfig",
    "RateLimitConfig",
    "RetryConfig",
    "StreamConfig",
    "TierConfig",
    "VerifierConfig",
    "load_config",
    "parse_config",
]
