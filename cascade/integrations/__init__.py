"""Cascades in other shapes: an OpenAI-shaped client."""
