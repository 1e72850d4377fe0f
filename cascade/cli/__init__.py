"""The `cascade` command line."""

from cascade.cli.main import main

__all__ = ["main"]
