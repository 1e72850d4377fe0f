"""The fake provider server's first home, kept so existing imports work: see `cascade.testing.fake`."""

from cascade.testing.fake import *  # noqa: F403
from cascade.testing.fake import __all__ as __all__
