"""What the local store's front changes in a request head: SSE-KMS becomes SSE-S3, nothing else moves."""

from __future__ import annotations

import pytest

from zeroserve.local_s3.front import body_framing, rewrite_head


def head(*fields: str) -> bytes:
    return ("PUT /bucket/key HTTP/1.1\r\n" + "".join(f"{f}\r\n" for f in fields) + "\r\n").encode()


def test_sse_kms_becomes_sse_s3_and_its_key_headers_are_dropped() -> None:
    before = head(
        "Host: 127.0.0.1:9000",
        "X-Amz-Server-Side-Encryption: aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id: alias/my-key",
        "x-amz-server-side-encryption-context: e30=",
        "x-amz-server-side-encryption-bucket-key-enabled: true",
        "Content-Length: 5",
    )
    assert rewrite_head(before) == head(
        "Host: 127.0.0.1:9000", "x-amz-server-side-encryption: AES256", "Content-Length: 5"
    )


def test_dual_layer_sse_kms_becomes_sse_s3_too() -> None:
    assert b"AES256" in rewrite_head(head("x-amz-server-side-encryption: aws:kms:dsse"))


@pytest.mark.parametrize(
    "fields",
    [
        ("Host: h", "Content-Length: 0"),
        ("x-amz-server-side-encryption: AES256",),
        # SSE-C keeps its own headers; a KMS key id without SSE-KMS is weed's to refuse.
        ("x-amz-server-side-encryption-customer-algorithm: AES256",),
        ("x-amz-server-side-encryption-aws-kms-key-id: k",),
    ],
)
def test_other_heads_pass_byte_for_byte(fields: tuple[str, ...]) -> None:
    assert rewrite_head(head(*fields)) == head(*fields)


def test_body_framing_follows_content_length_or_chunked() -> None:
    assert body_framing(head("Content-Length: 12")) == (False, 12)
    assert body_framing(head("Transfer-Encoding: chunked")) == (True, 0)
    assert body_framing(head("Host: h")) == (False, 0)
