"""LitServe, as its docs show it: a `LitAPI` with setup / decode_request / predict / encode_response,
served by `LitServer` on CPU with its defaults (one inference worker, no batching).

python litserve_app.py --mode pipeline|onnx --checkpoint DIR --bundle DIR --port N; POST /predict.
"""

from typing import Any

import litserve as ls
from classifiers import arguments, build


class ClassifierAPI(ls.LitAPI):
    def __init__(self, mode: str, checkpoint: str, bundle: str) -> None:
        super().__init__()
        self.mode, self.checkpoint, self.bundle = mode, checkpoint, bundle

    def setup(self, device: str) -> None:
        self.classify = build(self.mode, self.checkpoint, self.bundle)

    # No annotation on `request`: LitServe derives the request schema from it (a dict becomes a query field).
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return request["inputs"]

    def predict(self, inputs: Any) -> Any:
        return self.classify(inputs)

    def encode_response(self, output: Any) -> Any:
        return output


if __name__ == "__main__":
    args = arguments()
    server = ls.LitServer(ClassifierAPI(args.mode, args.checkpoint, args.bundle), accelerator="cpu")
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False, log_level="warning")
