"""otel_ml's zero-code instrumentors, one per framework (entry point group ``opentelemetry_instrumentor``).

=========================  ===========================================================================  ================
entry point                instrumentor                                                                 extra
=========================  ===========================================================================  ================
``otel_ml_sklearn``        :class:`otel_ml.instrumentation.sklearn.SklearnInstrumentor`                 ``sklearn``
``otel_ml_onnxruntime``    :class:`otel_ml.instrumentation.onnxruntime.OnnxRuntimeInstrumentor`         ``onnxruntime``
``otel_ml_torch``          :class:`otel_ml.instrumentation.torch.TorchInstrumentor`                     ``torch``
``otel_ml_transformers``   :class:`otel_ml.instrumentation.transformers.TransformersInstrumentor`       ``transformers``
``otel_ml_gpu``            :class:`otel_ml.instrumentation.gpu.GpuInstrumentor`                         ``gpu``
=========================  ===========================================================================  ================

``opentelemetry-instrument`` (from ``opentelemetry-distro``, the ``auto`` extra) loads them all;
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` takes the entry point names. Model identity, prediction
ids and the mapping file: :mod:`otel_ml.auto`.
"""
