"""LitServe, as its docs show it: a `LitAPI` with setup / decode_request / predict / encode_response,
served by `LitServer` on CPU. Defaults: one inference worker, no batching. Tuned (PEER_* variables, see
classifiers.tuning): `LitAPI(max_batch_size=N, batch_timeout=T)` with a batched predict, `fast_queue=True`
(ZeroMQ, which LitServe's docs advise above ~100 requests/s) and `workers_per_device`.

python litserve_app.py --mode pipeline|onnx --checkpoint DIR --bundle DIR --port N; POST /predict.
"""

from typing import Any

import litserve as ls
from classifiers import arguments, build, tuning


class ClassifierAPI(ls.LitAPI):
    def __init__(self, mode: str, checkpoint: str, bundle: str, **options: Any) -> None:
        super().__init__(**options)
        self.mode, self.checkpoint, self.bundle = mode, checkpoint, bundle

    def setup(self, device: str) -> None:
        self.classify = build(self.mode, self.checkpoint, self.bundle)

    # No annotation on `request`: LitServe derives the request schema from it (a dict becomes a query field).
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return request["inputs"]

    def predict(self, inputs: Any) -> Any:
        # Batched: `inputs` is the list of texts LitServe gathered, and one answer per text comes back.
        return self.classify(inputs)

    def encode_response(self, output: Any) -> Any:
        return output


if __name__ == "__main__":
    args = arguments()
    batch = int(tuning("PEER_MAX_BATCH_SIZE", 1))
    options = (
        {"max_batch_size": batch, "batch_timeout": tuning("PEER_BATCH_WAIT_MS") / 1000} if batch > 1 else {}
    )
    server = ls.LitServer(
        ClassifierAPI(args.mode, args.checkpoint, args.bundle, **options),
        accelerator="cpu",
        workers_per_device=int(tuning("PEER_WORKERS", 1)),
        fast_queue=bool(tuning("PEER_FAST_QUEUE")),
    )
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False, log_level="warning")
