"""The HTTP surface, a thin adapter over the services: the Starlette app and its routes for the control
plane and CloudWatch Logs (`POST /`, JSON 1.1), the runtime and the container contract (invocations, `/ping`),
the public `/v1` route, metrics, cost, logs, status and the dashboard; SigV4 and API-key authentication; and
`error_responses`, the one table from domain errors to HTTP status and error code. It owns no state of its
own: the app's lifespan starts `wiring.Services` and the routes read it. May import every package below the
http layer (wiring and down, docs/architecture.md); never torch, onnxruntime or transformers, at any level
(the devtools layout check enforces it).
"""
