"""Routers: what picks the tier a request's ladder starts at, before any tier is called."""
