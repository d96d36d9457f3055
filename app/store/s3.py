"""A minimal S3 client for the audit checkpoints: put, get and list objects of one bucket,
path-style, signed with AWS Signature Version 4. Works with AWS S3 and S3-compatible stores
(MinIO, Ceph, Garage, …); nothing else of S3 is needed, so no SDK is pulled in."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx
from defusedxml import ElementTree

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Error(OSError):
    """The store refused or could not be reached."""


def _canonical_query(query: dict[str, str]) -> str:
    return "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )


def signature_v4(
    method: str,
    host: str,
    path: str,
    query: dict[str, str],
    body: bytes,
    *,
    when: time.struct_time,
    region: str,
    access_key_id: str,
    secret_access_key: str,
) -> dict[str, str]:
    """The headers that sign a request with AWS Signature Version 4 (service ``s3``):
    ``host``, ``x-amz-content-sha256``, ``x-amz-date`` and ``authorization``."""
    stamp, day = time.strftime("%Y%m%dT%H%M%SZ", when), time.strftime("%Y%m%d", when)
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": stamp}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            path,
            _canonical_query(query),
            "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
            signed,
            payload,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    secret = ("AWS4" + secret_access_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        secret = hmac.new(secret, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(secret, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key_id}/{scope},"
        f" SignedHeaders={signed}, Signature={signature}"
    )
    return headers


@dataclass(frozen=True)
class S3Bucket:
    endpoint: str  # https://s3.eu-central-1.amazonaws.com, http://127.0.0.1:9000
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str

    def _signed(
        self, method: str, key: str, query: dict[str, str], body: bytes = b""
    ) -> httpx.Request:
        endpoint = urlsplit(self.endpoint)
        path = "/" + quote(self.bucket, safe="") + ("/" + quote(key, safe="/~") if key else "")
        headers = signature_v4(
            method,
            endpoint.netloc,
            path,
            query,
            body,
            when=time.gmtime(),
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        )
        url = f"{endpoint.scheme}://{endpoint.netloc}{path}"
        if query:
            url += "?" + _canonical_query(query)
        return httpx.Request(method, url, headers=headers, content=body)

    def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            with httpx.Client(timeout=10) as client:
                response = client.send(request)
        except httpx.HTTPError as exc:
            raise S3Error(f"S3 {request.method}: {exc}") from exc
        if response.status_code >= 300:
            raise S3Error(f"S3 {request.method} answered {response.status_code}")
        return response

    def put(self, key: str, body: bytes) -> None:
        self._send(self._signed("PUT", key, {}, body))

    def get(self, key: str) -> bytes:
        return self._send(self._signed("GET", key, {})).content

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (ListObjectsV2, page by page)."""
        found: list[str] = []
        query = {"list-type": "2", "prefix": prefix}
        while True:
            document = ElementTree.fromstring(self._send(self._signed("GET", "", query)).content)
            found += [node.text or "" for node in document.iter(f"{_NS}Key")]
            token = document.findtext(f"{_NS}NextContinuationToken")
            if document.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return found
            query = {**query, "continuation-token": token}
