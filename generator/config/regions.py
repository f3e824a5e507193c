"""Region names from botocore's own endpoint data, so new regions arrive with botocore."""

from functools import cache

import botocore.loaders


@cache
def known_regions() -> frozenset[str]:
    """Every region botocore knows in any partition."""
    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    return frozenset(
        region for partition in endpoints["partitions"] for region in partition["regions"]
    )
