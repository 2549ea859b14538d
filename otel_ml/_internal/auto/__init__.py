"""Zero-code instrumentation: model identity, load paths, one monitor per model, call nesting."""
