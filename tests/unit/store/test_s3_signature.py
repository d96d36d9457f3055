"""The S3 client signs requests with AWS Signature Version 4 exactly as AWS documents it
(the "GET Bucket (List Objects)" example of the Signature Version 4 documentation)."""

from __future__ import annotations

import time

from app.store.s3 import signature_v4


def test_the_documented_list_objects_example_signs_identically() -> None:
    headers = signature_v4(
        "GET",
        "examplebucket.s3.amazonaws.com",
        "/",
        {"max-keys": "2", "prefix": "J"},
        b"",
        when=time.strptime("20130524T000000Z", "%Y%m%dT%H%M%SZ"),
        region="us-east-1",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        " SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
        " Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )
    assert headers["x-amz-content-sha256"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
