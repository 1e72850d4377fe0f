"""The pure core: values, events, errors, money, tokens, redaction and every rule of the cascade.

Nothing here does I/O or imports an SDK, pydantic or rich; every other layer builds on it.
"""
