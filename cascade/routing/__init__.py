"""Routers: what picks the tier a request starts at, before any tier is called."""
