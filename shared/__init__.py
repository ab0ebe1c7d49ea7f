"""Footprint: refined web events from CDM exports into customer activities."""

__version__ = "0.1.0"
