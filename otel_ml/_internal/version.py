"""otel_ml's version, reported as the instrumentation scope version on every signal."""

__version__ = "0.1.0"
