"""Authentication: AWS SigV4 on the SageMaker API (control plane and runtime) and on CloudWatch Logs, API keys
on the public route.

SigV4 is verified by recomputing the signature with botocore's own signer over a request rebuilt from what
arrived (method, raw path and query, the headers the client says it signed, the body) and comparing in
constant time. API keys also guard the OpenAI-compatible /v1 routes, sent there as `Authorization: Bearer`.
Both are off unless configured (Settings.access_keys, Settings.api_keys). `/ping`, metrics and
the dashboard are never signed: they are not part of SageMaker's API.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zeroserve.api.error_responses import Plane, error_response
from zeroserve.aws.payload import MAX_BODY_BYTES
from zeroserve.errors import (
    AuthError,
    IncompleteSignature,
    MissingAuthentication,
    RequestTooLarge,
    UnrecognizedClient,
    ZeroserveError,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "sagemaker"  # botocore signs both `sagemaker` and `sagemaker-runtime` as this service
LOGS_SERVICE = "logs"  # CloudWatch Logs (`X-Amz-Target: Logs_20140328.*` on POST /)
_LOGS_TARGET = b"logs_20140328."
MAX_CLOCK_SKEW_S = 300.0
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# The SageMaker API: POST / (control plane), /endpoints/{name}/invocations and /invocations (runtime).
_SIGNED_PATH = re.compile(r"^/(?:$|invocations$|endpoints/)")


def parse_keys(text: str) -> dict[str, str]:
    """`AKID:SECRET,AKID2:SECRET2` -> {akid: secret}; a malformed entry is a configuration error."""
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, secret = entry.partition(":")
        if not sep or not key_id or not secret:
            raise ValueError("ZEROSERVE_ACCESS_KEYS must look like AKID:SECRET[,AKID2:SECRET2]")
        keys[key_id] = secret
    return keys


@dataclass(frozen=True)
class SignedRequest:
    method: str
    raw_path: str  # as sent, percent-encoding included: the client signed exactly this
    query: str
    headers: list[tuple[str, str]]  # lower-case names, in arrival order
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


@dataclass(frozen=True)
class _Authorization:
    key_id: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str


def _parse_authorization(header: str | None) -> _Authorization:
    if not header:
        raise MissingAuthentication("Missing Authentication Token")
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported authorization algorithm; only {ALGORITHM} is accepted.")
    parts = dict(item.strip().partition("=")[::2] for item in rest.split(","))
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not parts.get(name)]
    if missing:
        raise IncompleteSignature(
            f"Authorization header requires '{missing[0]}' parameter. Authorization={header}"
        )
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise IncompleteSignature(
            f"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{parts['Credential']}'"
        )
    key_id, date, region, service, _ = scope
    return _Authorization(
        key_id, date, region, service, parts["SignedHeaders"].split(";"), parts["Signature"]
    )


class SigV4Verifier:
    def __init__(
        self,
        keys: dict[str, str],
        *,
        clock: Callable[[], float] = time.time,
        max_skew_s: float = MAX_CLOCK_SKEW_S,
        region: str | None = None,
    ) -> None:
        self.keys = keys
        self.region = region  # None: any region (a signature for another region is still a valid one)
        self.clock = clock
        self.max_skew_s = max_skew_s

    def verify(self, request: SignedRequest, service: str = SERVICE) -> str:
        """The access key id that signed `request` for `service`, or the AuthError AWS would answer."""
        auth = _parse_authorization(request.header("authorization"))
        secret = self.keys.get(auth.key_id)
        if secret is None:
            raise UnrecognizedClient("The security token included in the request is invalid.")
        if auth.service != service:
            raise AuthError(f"Credential should be scoped to correct service: '{service}'.")
        if self.region is not None and auth.region != self.region:
            raise AuthError(f"Credential should be scoped to a valid region, not '{auth.region}'.")
        for required in ("host", "x-amz-date"):
            if required not in auth.signed_headers:
                raise AuthError(f"'{required}' must be a signed header.")
        amz_date = request.header("x-amz-date") or ""
        self._check_date(amz_date, auth.date)
        self._check_payload_hash(request)
        expected = self._signature(request, auth, secret, amz_date)
        if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
            raise AuthError(
                "The request signature we calculated does not match the signature you provided. Check your "
                "AWS Secret Access Key and signing method. Consult the service documentation for details."
            )
        return auth.key_id

    def _check_date(self, amz_date: str, scope_date: str) -> None:
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            raise IncompleteSignature("X-Amz-Date must be a date like 20240101T120000Z.") from None
        if scope_date != amz_date[:8]:
            raise AuthError(
                f"Credential should be scoped to a valid date, not '{scope_date}', for {amz_date}."
            )
        now = self.clock()
        skew_s = signed_at.timestamp() - now
        minutes = int(self.max_skew_s // 60)
        if skew_s < -self.max_skew_s:
            raise AuthError(
                f"Signature expired: {amz_date} is now earlier than {_amz(now - self.max_skew_s)} "
                f"({_amz(now)} - {minutes} min.)"
            )
        if skew_s > self.max_skew_s:
            raise AuthError(
                f"Signature not yet current: {amz_date} is still later than {_amz(now + self.max_skew_s)} "
                f"({_amz(now)} + {minutes} min.)"
            )

    @staticmethod
    def _check_payload_hash(request: SignedRequest) -> None:
        # botocore puts this header's value into the canonical request instead of hashing the body; were we to
        # trust it, a signed request could carry any body. (UNSIGNED-PAYLOAD is refused for the same reason.)
        declared = request.header("x-amz-content-sha256")
        if declared is not None and declared != hashlib.sha256(request.body).hexdigest():
            reason = "an unsigned payload" if declared == _UNSIGNED_PAYLOAD else "a hash that does not match"
            raise AuthError(f"The x-amz-content-sha256 header declares {reason} the body.")

    @staticmethod
    def _signature(request: SignedRequest, auth: _Authorization, secret: str, amz_date: str) -> str:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        host = request.header("host") or ""
        query = f"?{request.query}" if request.query else ""
        rebuilt = AWSRequest(
            method=request.method, url=f"http://{host}{request.raw_path}{query}", data=request.body
        )
        signed = set(auth.signed_headers)
        for name, value in request.headers:
            if name in signed:
                rebuilt.headers[name] = value  # HTTPHeaders appends: repeated headers keep every value
        rebuilt.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(auth.key_id, secret), auth.service, auth.region)
        if signer.signed_headers(signer.headers_to_sign(rebuilt)) != ";".join(auth.signed_headers):
            # The client signed headers that botocore never signs (user-agent, expect): not botocore's scheme.
            raise AuthError(f"Unsupported SignedHeaders: {';'.join(auth.signed_headers)}")
        return str(
            signer.signature(signer.string_to_sign(rebuilt, signer.canonical_request(rebuilt)), rebuilt)
        )


def _amz(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime(_AMZ_DATE)


def _api_keys(configured: str) -> list[str]:
    return [key.strip() for key in configured.split(",") if key.strip()]


def check_api_key(given: str | None, configured: str) -> None:
    """For the public route: any of the comma-separated `configured` keys, compared in constant time."""
    keys = _api_keys(configured)
    if not keys:
        return
    if not given:
        raise MissingAuthentication("Missing API key: send it in the x-api-key header.")
    if not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise UnrecognizedClient("The API key is not valid.")


def check_bearer_key(authorization: str | None, configured: str) -> None:
    """For the OpenAI-compatible /v1 routes: `Authorization: Bearer KEY` with one of the same keys (the openai
    client sends its api_key this way). Open when no keys are configured, whatever the client sends."""
    if not _api_keys(configured):
        return
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingAuthentication("Missing API key: send it as the header `Authorization: Bearer KEY`.")
    check_api_key(token.strip(), configured)


class SigV4Middleware:
    """ASGI middleware: when access keys are configured, a request to the SageMaker API (or to CloudWatch
    Logs, signed for `logs`) is passed on only if its signature checks out. The body is read once here and
    replayed to the route."""

    def __init__(
        self,
        app: ASGIApp,
        access_keys: str = "",
        clock: Callable[[], float] = time.time,
        region: str | None = None,
    ) -> None:
        self.app = app
        keys = parse_keys(access_keys)
        self.verifier = SigV4Verifier(keys, clock=clock, region=region) if keys else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.verifier is None or scope["type"] != "http" or not _SIGNED_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        plane: Plane = "control" if scope["path"] == "/" else "runtime"
        service = SERVICE
        if plane == "control" and _is_logs_target(scope):
            plane, service = "logs", LOGS_SERVICE
        try:
            body = await _read_body(receive, MAX_BODY_BYTES)
            self.verifier.verify(_signed_request(scope, body), service)
        except ZeroserveError as exc:
            await error_response(exc, plane)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _is_logs_target(scope: Scope) -> bool:
    return any(
        name.lower() == b"x-amz-target" and value.lower().startswith(_LOGS_TARGET)
        for name, value in scope["headers"]
    )


def _signed_request(scope: Scope, body: bytes) -> SignedRequest:
    return SignedRequest(
        method=scope["method"],
        raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=[
            (name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in scope["headers"]
        ],
        body=body,
    )


async def _read_body(receive: Receive, limit_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit_bytes:
            raise RequestTooLarge(f"Request body is larger than {limit_bytes // (1024 * 1024)} MB.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()  # later calls wait for the disconnect, as on the original channel
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
