"""The OpenAI-compatible edge: apps that speak OpenAI's chat-completions protocol reach the Router."""

from tierlift.gateway._app import build_app

__all__ = ["build_app"]
