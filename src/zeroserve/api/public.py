"""The friendly public route, like a Lambda + API Gateway front on a SageMaker endpoint:
`POST /v1/{endpoint}/predict` with `{"text": "..."}` answers
`{"label": "positive", "probability": 0.97, "message": "Positive sentiment, Probability: 97%"}`.

A thin adapter over the data plane: the text becomes an ordinary invocation handed to `runtime.run`, as
InvokeEndpoint's is (so admission, metrics and billing see it like any other), and only a successful answer is
reshaped; errors keep SageMaker's runtime shape.
Optional API keys (Settings.api_keys, header `x-api-key`) guard it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zeroserve.api import runtime
from zeroserve.api.auth import check_api_key
from zeroserve.api.error_responses import error_response
from zeroserve.errors import ValidationError
from zeroserve.runtimes.base import Invocation

MAX_TEXT_CHARS = 100_000
# A checkpoint saved without label names answers LABEL_0/LABEL_1; for a two-class classifier behind a
# "predict sentiment" route, those are by convention negative and positive.
_UNNAMED_LABELS = {"label_0": "negative", "label_1": "positive"}
_SENTIMENTS = frozenset({"negative", "positive", "neutral"})
_NOT_A_CLASSIFIER = "Endpoint {name} did not answer like a text classifier ([{{label, score}}])."


def _text_of(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep for the parser
        raise ValidationError('Body must be JSON like {"text": "..."}.') from None
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise ValidationError('Body must be JSON like {"text": "..."} with a non-empty string.')
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError(f"text must be at most {MAX_TEXT_CHARS} characters.")
    return text


def prediction(answer: Any) -> dict[str, Any]:
    """The public answer from a text-classification answer (`[{"label": ..., "score": ...}]`)."""
    best = answer[0] if isinstance(answer, list) and answer else answer
    if isinstance(best, list) and best:  # top_k answers: one list per input, best first
        best = best[0]
    if not isinstance(best, dict) or not isinstance(best.get("label"), str) or "score" not in best:
        raise ValidationError("not a classifier's answer")
    raw = best["label"].lower()
    label = _UNNAMED_LABELS.get(raw, raw)
    probability = round(float(best["score"]), 2)
    noun = f"{label.capitalize()} sentiment" if label in _SENTIMENTS else label.capitalize()
    return {"label": label, "probability": probability, "message": f"{noun}, Probability: {probability:.0%}"}


async def predict(request: Request) -> Response:
    name = request.path_params["endpoint_name"]
    try:
        check_api_key(request.headers.get("x-api-key"), request.app.state.settings.api_keys)
        text = _text_of(await request.body())
    except Exception as exc:
        return error_response(exc, "runtime")
    # This friendly route truncates a review longer than the model's window, where InvokeEndpoint refuses
    # it as SageMaker does.
    body = json.dumps({"inputs": text, "parameters": {"truncation": True}}).encode()
    invocation = Invocation(body, "application/json", "application/json", None)
    answered = await runtime.run(request.app, name, invocation)
    if answered.status_code != 200:
        return answered
    try:
        return JSONResponse(prediction(json.loads(bytes(answered.body))))
    except (ValueError, TypeError, ValidationError):
        # An answer, but not a classifier's (another task, or custom inference code with its own format).
        return error_response(ValidationError(_NOT_A_CLASSIFIER.format(name=name)), "runtime")


routes = [Route("/v1/{endpoint_name}/predict", predict, methods=["POST"])]
