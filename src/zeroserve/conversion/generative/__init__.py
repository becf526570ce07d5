"""Deploy-time export of generative models (causal LMs and encoder-decoders) to ONNX graphs with a KV cache.

`exporter.export_generative` writes the graphs and generation.json (`metadata.py`); the worker runs them
through runtimes/generation/onnx_model.py. torch is imported by `exporter` and `wrappers` only.
"""
