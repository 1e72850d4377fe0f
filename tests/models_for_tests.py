"""Pydantic models the schema verifier tests name as `models_for_tests:Class`."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field, model_validator


class LineItem(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(ge=0)
    quantity: int = Field(default=1, ge=1)


class Invoice(BaseModel):
    """An invoice whose total must match its items: a rule JSON Schema cannot state."""

    customer: str
    items: list[LineItem] = Field(min_length=1)
    total: float

    @model_validator(mode="after")
    def _total_matches_items(self) -> Invoice:
        expected = sum(item.price * item.quantity for item in self.items)
        if abs(expected - self.total) > 0.005:
            raise ValueError(f"total {self.total:g} does not match the items ({expected:g})")
        return self


class Shipment(BaseModel):
    """A model with a date: strict JSON validation still takes an ISO date string."""

    reference: str
    shipped_on: date


class NotAModel:
    """A plain class: naming it as a model is a configuration error."""
