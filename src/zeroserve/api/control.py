"""SageMaker control plane over HTTP: `POST /` with `X-Amz-Target: SageMaker.<Action>` (JSON 1.1)."""

from __future__ import annotations

import asyncio
import json
import uuid

from starlette.requests import Request
from starlette.responses import Response

from zeroserve.api.errors import error_response
from zeroserve.control.actions import ControlPlane
from zeroserve.control.payload import parse_params
from zeroserve.errors import ValidationError

_TARGET_PREFIX = "SageMaker."


async def handle(request: Request) -> Response:
    control: ControlPlane = request.app.state.control
    request_id = str(uuid.uuid4())
    try:
        target = request.headers.get("x-amz-target", "")
        if not target.startswith(_TARGET_PREFIX):
            raise ValidationError("Missing or unsupported X-Amz-Target header; expected SageMaker.<Action>.")
        params = parse_params(await request.body())
        # SQLite writes and validation are quick but blocking; keep them off the event loop's hot path
        # only when they might be slow (listing thousands of rows).
        action = target[len(_TARGET_PREFIX) :]
        if action.startswith("List"):
            result = await asyncio.to_thread(control.handle, action, params)
        else:
            result = control.handle(action, params)
    except Exception as exc:
        response = error_response(exc, "control")
        response.headers["x-amzn-RequestId"] = request_id
        return response
    return Response(
        json.dumps(result),
        media_type="application/x-amz-json-1.1",
        headers={"x-amzn-RequestId": request_id},
    )
