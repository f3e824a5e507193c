"""Helpers shared by the counting tests."""

import itertools

import boto3
from botocore.config import Config

_ids = itertools.count(1)


def new_pair_ids() -> tuple[str, str]:
    """Fresh snapshot ids, so tests sharing a server never collide."""
    n = next(_ids)
    return f"snap-{n:08x}a", f"snap-{n:08x}b"


def make_client(url: str, *, botocore_retries: bool = False):
    """An ``ebs`` client for the fake; botocore's own retries off unless asked for."""
    retries = {"mode": "standard"} if botocore_retries else {"total_max_attempts": 1}
    return boto3.client(
        "ebs",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries=retries, max_pool_connections=16),
    )
