"""Text generation at serve time: the decoding loop (greedy, sampling, beam search) over a model that turns
token ids into next-token logits with a KV cache, and the settings one generation runs with. numpy only: the
model behind the `NextTokenModel` port is onnxruntime in workers and torch in tests.

Entry points: `decode.generate()` (final sequences) and `decode.stream()` (greedy / sampled tokens as they
come).
"""
