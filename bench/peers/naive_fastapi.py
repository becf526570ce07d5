"""The naive baseline: FastAPI + a model object, as people write it (a sync route, uvicorn, one process).

python naive_fastapi.py --mode pipeline|onnx --checkpoint DIR --bundle DIR --port N; POST /predict
{"inputs": ...}.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from classifiers import arguments, build
from fastapi import FastAPI
from pydantic import BaseModel

args = arguments()
classify = build(args.mode, args.checkpoint, args.bundle)
app = FastAPI()


class Request(BaseModel):
    inputs: str | list[str]


@app.post("/predict")
def predict(request: Request) -> Any:
    return classify(request.inputs)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
