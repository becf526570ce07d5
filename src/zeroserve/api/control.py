"""The JSON 1.1 APIs on `POST /`, dispatched by `X-Amz-Target` prefix: `SageMaker.<Action>` (the control
plane) and `Logs_20140328.<Action>` (CloudWatch Logs)."""

from __future__ import annotations

import asyncio
import json
import uuid

from starlette.requests import Request
from starlette.responses import Response

from zeroserve.api.error_responses import Plane, error_response
from zeroserve.aws.payload import parse_params
from zeroserve.control.actions import ControlPlane
from zeroserve.errors import ValidationError
from zeroserve.logs.actions import LogsApi

SAGEMAKER_PREFIX = "SageMaker."
LOGS_PREFIX = "Logs_20140328."


def plane_of(target: str) -> Plane:
    return "logs" if target.startswith(LOGS_PREFIX) else "control"


async def handle(request: Request) -> Response:
    request_id = str(uuid.uuid4())
    target = request.headers.get("x-amz-target", "")
    plane = plane_of(target)
    try:
        if target.startswith(LOGS_PREFIX):
            logs: LogsApi = request.app.state.logs
            params = parse_params(await request.body())
            # Every logs read is an SQLite query (and a flush of the writer's queue): off the event loop.
            result = await asyncio.to_thread(logs.handle, target[len(LOGS_PREFIX) :], params)
        elif target.startswith(SAGEMAKER_PREFIX):
            control: ControlPlane = request.app.state.control
            params = parse_params(await request.body())
            # SQLite writes and validation are quick but blocking; keep them off the event loop's hot path
            # only when they might be slow (listing thousands of rows).
            action = target[len(SAGEMAKER_PREFIX) :]
            if action.startswith("List"):
                result = await asyncio.to_thread(control.handle, action, params)
            else:
                result = control.handle(action, params)
        else:
            raise ValidationError(
                "Missing or unsupported X-Amz-Target header; expected SageMaker.<Action> or "
                "Logs_20140328.<Action>."
            )
    except Exception as exc:
        response = error_response(exc, plane)
        response.headers["x-amzn-RequestId"] = request_id
        return response
    return Response(
        json.dumps(result),
        media_type="application/x-amz-json-1.1",
        headers={"x-amzn-RequestId": request_id},
    )
