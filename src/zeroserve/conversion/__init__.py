"""Deploy-time conversion of an unpacked checkpoint into a bundle a worker can cold-start from: ONNX export,
checks, activation smoothing, int8 quantization and the int8 fidelity gate, graph pre-optimization, written
with the `bundle.json` manifest. It imports torch, transformers and onnx (inside functions), so it runs only
in the converter subprocess (`python -m zeroserve.conversion.export`, started by `control/bundles.py`) and
in tests, never in the server or a worker. May import `runtimes` (the serving pipeline the gate judges
through, the manifest, the tokenizer) and the foundation.
"""
