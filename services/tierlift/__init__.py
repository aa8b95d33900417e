"""Tierlift: routes each LLM request to the cheapest suitable model tier."""

__version__ = "0.1.0"
