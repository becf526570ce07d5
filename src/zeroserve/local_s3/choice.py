"""Where the server's S3 is: the rule `--s3` follows, as a pure function of what the environment says.

With `--s3`, the local store starts unless the user has S3 configured:
1. `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, is set to anything but this data dir's own local store
   (a shell that ran `eval "$(zeroserve env)"` carries that one) -> that endpoint;
2. else boto3 finds AWS credentials (environment, shared credentials/config files, SSO, credential process;
   not zeroserve's own dummy keys) -> AWS S3;
3. else -> the local store.
Without `--s3`, S3 is whatever boto3's own configuration says.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class S3Choice:
    local: bool  # start the local store
    endpoint_url: str | None  # a configured endpoint; None for AWS's own (or the local store's, once known)
    reason: str  # one sentence for the startup log and the status answer


def choose_s3(
    *,
    want_local: bool,
    endpoint: tuple[str, str] | None,
    credentials: str | None,
    own_endpoint: str | None,
) -> S3Choice:
    """`endpoint` is (variable, URL) from the environment, `credentials` where boto3 found keys (or None),
    `own_endpoint` the URL the local store of this data dir had last time (or None)."""
    ours = (
        want_local
        and endpoint is not None
        and own_endpoint is not None
        and _same_url(endpoint[1], own_endpoint)
    )
    if endpoint is not None and not ours:
        variable, url = endpoint
        if want_local:
            return S3Choice(False, url, f"{variable} is set ({url}): using it instead of a local S3 store")
        return S3Choice(False, url, f"{variable} is set")
    if not want_local:
        return S3Choice(False, None, "boto3's default configuration (AWS S3)")
    if credentials is not None and not ours:
        return S3Choice(
            False, None, f"AWS credentials found ({credentials}): using AWS S3 instead of a local S3 store"
        )
    return S3Choice(True, None, "--s3 and no S3 configured: local S3 store")


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()
