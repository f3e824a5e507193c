"""A client wrapper for tests: records chosen calls, fails the next one on demand."""

from __future__ import annotations

import copy


class Recorder:
    """Wraps a client: records calls of chosen methods; fails the next call of one, before
    it reaches the service (``fail_next``) or after it took effect (``fail_after``)."""

    def __init__(self, client, record=()):
        self._client = client
        self._record = set(record)
        self.calls: list[tuple[str, dict]] = []
        self.fail_next: dict[str, Exception] = {}
        self.fail_after: dict[str, Exception] = {}
        self.meta = client.meta

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            error = self.fail_next.pop(name, None)
            if error is not None:
                raise error
            if name in self._record:
                self.calls.append((name, copy.deepcopy(kwargs)))
            result = attr(*args, **kwargs)
            error = self.fail_after.pop(name, None)
            if error is not None:
                raise error  # the call took effect, but its caller never learns it
            return result

        return call


def client_error(code: str, operation: str = "Call", status: int = 400):
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )
