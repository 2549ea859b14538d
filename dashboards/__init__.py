"""otel_ml's Grafana dashboards as code.

``python dashboards/generate.py`` rebuilds every ``dashboards/*.json`` from the typed builders of
``grafana-foundation-sdk`` (one module per dashboard); the JSON is committed, and Grafana loads
it through ``stack/grafana/provisioning/dashboards/``. ``dashboards.queries`` reads the committed
JSON back and lists every panel query, for tests that run them against a real Prometheus and Loki.
"""
