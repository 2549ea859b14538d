"""GPU metrics from NVML on the hardware semantic conventions, and energy per inference.

``source`` opens NVML and finds the devices, ``sample`` reads one device, ``instruments`` turns
samples into observable instruments per meter provider, ``energy`` shares the energy counters
between overlapping calls, ``control`` turns it all on and off. ``nvml`` is the only module that
calls into NVML. The user manual is the docstring of :mod:`otel_ml.gpu`.
"""
