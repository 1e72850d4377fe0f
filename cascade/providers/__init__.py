"""Provider adapters, one per wire protocol, plus the offline simulated provider."""

from cascade.providers.anthropic import AnthropicAdapter
from cascade.providers.base import Provider
from cascade.providers.openai import OpenAIAdapter
from cascade.providers.simulated import SimulatedProvider

__all__ = ["AnthropicAdapter", "OpenAIAdapter", "Provider", "SimulatedProvider"]
