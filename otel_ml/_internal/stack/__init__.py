"""The local backend stack behind ``otel-ml stack build|up|down|status``.

Collector (built with ocb from ``collector/manifest.yaml``), Jaeger v2, Loki 3, Prometheus 3 and
Alertmanager 0.34 are built from source with Go into ``.stack/bin``. All of them run as plain
background processes bound to 127.0.0.1, with pid files in ``.stack/run``, data in
``.stack/data`` and logs in ``.stack/logs/<component>.log``.

Modules: :mod:`.paths` (where things live), :mod:`.components` (what runs, on which ports),
:mod:`.build` (building binaries, skipped when their stamp matches), :mod:`.processes`
(start/stop/health/reload), :mod:`.alerting` (Alertmanager's local config and secret files),
:mod:`.cli` (the subcommands).
"""
