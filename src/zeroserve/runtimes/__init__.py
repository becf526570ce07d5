"""Serve-time model code, run inside workers (and the int8 gate): the `Handler` contract between a worker
and the model, the bundle manifest, loading a bundle into a ready handler, the ONNX Runtime model (and the
PyTorch fallback), the tokenizer, the batching pipeline, each task's pre- and post-processing (`tasks/`), the
SageMaker toolkit's request and response codec and its custom `inference.py` contract, and text generation
(`generation/`). The server process loads only `base` and `task_names`, never `onnx` or
`torch_runtime`. May import only the foundation.
"""
