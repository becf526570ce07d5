"""The rule `--s3` follows: a configured S3 wins over the local store; our own old endpoint does not count."""

from __future__ import annotations

from zeroserve.local_s3.choice import choose_s3

OWN = "http://127.0.0.1:40000"


def test_without_s3_flag_boto3_configuration_is_used_as_is() -> None:
    choice = choose_s3(want_local=False, endpoint=None, credentials=None, own_endpoint=None)
    assert not choice.local and choice.endpoint_url is None


def test_no_s3_configured_starts_the_local_store() -> None:
    assert choose_s3(want_local=True, endpoint=None, credentials=None, own_endpoint=None).local


def test_an_endpoint_url_in_the_environment_wins_and_says_so() -> None:
    choice = choose_s3(
        want_local=True,
        endpoint=("AWS_ENDPOINT_URL_S3", "http://minio:9000"),
        credentials=None,
        own_endpoint=OWN,
    )
    assert not choice.local
    assert choice.endpoint_url == "http://minio:9000"
    assert "AWS_ENDPOINT_URL_S3 is set" in choice.reason


def test_aws_credentials_mean_aws_s3() -> None:
    choice = choose_s3(
        want_local=True, endpoint=None, credentials="shared-credentials-file", own_endpoint=None
    )
    assert not choice.local and choice.endpoint_url is None
    assert "shared-credentials-file" in choice.reason


def test_the_endpoint_of_our_own_earlier_store_is_not_a_configured_s3() -> None:
    # A shell that ran `eval "$(zeroserve env)"` exports the local store's URL; restarting the server from it
    # must start the store again, not point at a dead one.
    choice = choose_s3(
        want_local=True, endpoint=("AWS_ENDPOINT_URL_S3", OWN + "/"), credentials=None, own_endpoint=OWN
    )
    assert choice.local
