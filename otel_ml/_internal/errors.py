"""Exceptions otel_ml raises on purpose (configuration and CLI input, never during inference)."""

from __future__ import annotations


class CLIError(Exception):
    """A problem with what the user asked the CLI for: printed as one line, exit status 2."""


class ProfileError(ValueError):
    """A reference profile that cannot be read: corrupt JSON, unknown version, missing fields."""
