"""Region names from botocore's own endpoint data, so new regions arrive with botocore."""

from __future__ import annotations

from functools import cache

import botocore.loaders


@cache
def _partitions() -> dict[str, str]:
    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    return {
        region: partition["partition"]
        for partition in endpoints["partitions"]
        for region in partition["regions"]
    }


@cache
def known_regions() -> frozenset[str]:
    """Every region botocore knows in any partition."""
    return frozenset(_partitions())


def partition_of(region: str) -> str | None:
    """The partition (``aws``, ``aws-cn``, ``aws-us-gov``...) of a known region."""
    return _partitions().get(region)


@cache
def longest_region_name() -> str:
    """The longest known region name, to check that names built from it fit AWS limits."""
    return max(sorted(known_regions()), key=len)
