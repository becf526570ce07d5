"""Reading the AWS configuration the way boto3 will, without asking the network: is S3 pointed somewhere, are
there credentials, is there a region. Shared by the server (`--s3` decides from it) and `zeroserve env`.

botocore is imported inside the functions so that a server with no S3 in use never pays for importing it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# The credentials zeroserve hands out when none are configured (its own server ignores signatures unless
# ZEROSERVE_ACCESS_KEYS is set, and the local store checks none). Recognisable, so that a shell which ran
# `eval "$(zeroserve env)"` is not mistaken for one holding real AWS credentials.
DUMMY_ACCESS_KEY_ID = "zeroserve"
DUMMY_SECRET_ACCESS_KEY = "zeroserve"

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# Providers that would call a metadata service (1 s timeouts each off EC2/ECS): a laptop has neither, and a
# process that must decide at startup cannot wait on them.
_METADATA_PROVIDERS = ("container-role", "iam-role")


def configured_s3_endpoint(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(variable, URL) of the S3 endpoint boto3 would use from the environment, if one is set."""
    for name in ENDPOINT_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def credentials_source() -> str | None:
    """Where boto3 would find credentials for this process (`env`, `shared-credentials-file`, `sso`, ...), or
    None when there are none or they are zeroserve's own dummies. Environment, shared files and profiles only:
    botocore reads os.environ itself."""
    import botocore.session

    session = botocore.session.Session()
    resolver = session.get_component("credential_provider")
    for method in _METADATA_PROVIDERS:
        resolver.remove(method)
    try:
        credentials = resolver.load_credentials()
    except Exception:  # a broken profile or config file: as good as no credentials for our purpose
        return None
    if credentials is None:
        return None
    # Only environment keys are read here: other providers' keys may be fetched lazily over the network.
    if credentials.method == "env" and credentials.access_key == DUMMY_ACCESS_KEY_ID:
        return None
    return str(credentials.method)


def configured_region() -> str | None:
    """The region boto3 would use for this process: AWS_DEFAULT_REGION (or AWS_REGION, which newer SDKs read)
    or the profile's, if any."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    import botocore.session

    session = botocore.session.Session()
    try:
        region = session.get_config_variable("region")
    except Exception:
        return None
    return str(region) if region else None


def defaults_for_missing(region: str) -> dict[str, str]:
    """Dummy credentials when this process has none, and `region` when it has none: what a zeroserve client
    needs to sign requests at all. Configured values are never replaced."""
    missing: dict[str, str] = {}
    if credentials_source() is None and not os.environ.get("AWS_ACCESS_KEY_ID"):
        missing["AWS_ACCESS_KEY_ID"] = DUMMY_ACCESS_KEY_ID
        missing["AWS_SECRET_ACCESS_KEY"] = DUMMY_SECRET_ACCESS_KEY
    if configured_region() is None:
        missing["AWS_DEFAULT_REGION"] = region
    return missing
