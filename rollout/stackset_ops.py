"""Run StackSet operations one after another and wait for each with a progress display.

With managed execution StackSets queues conflicting operations itself; without it (or
when someone else's operation is running) a call fails with OperationInProgressException,
and the call is repeated once the running operation has ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from rollout.display import Display
from rollout.stacks import DeployFailed

DONE = ("SUCCEEDED", "FAILED", "STOPPED")
ACTIVE = ("RUNNING", "QUEUED", "STOPPING")


class OperationRunner:
    """Starts StackSet operations and waits for them.

    Args:
        cfn: CloudFormation client in the StackSet admin account and home region.
        stackset: the StackSet name.
        call_as: ``{"CallAs": ...}`` or ``{}``.
        display: where progress goes.
        poll_seconds: pause between DescribeStackSetOperation calls.
        timeout_seconds: how long one operation may take.
    """

    def __init__(
        self,
        cfn: Any,
        stackset: str,
        call_as: dict[str, str],
        display: Display,
        poll_seconds: float = 10.0,
        timeout_seconds: float = 6 * 3600,
    ):
        self.cfn = cfn
        self.stackset = stackset
        self.call_as = call_as
        self.display = display
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.operations: list[str] = []

    def run(self, label: str, start: Callable[[], dict]) -> str:
        """Starts one operation with ``start()`` (returns the API response) and waits for it.

        Raises:
            DeployFailed: the operation ended FAILED or STOPPED.
        """
        for _attempt in range(20):
            try:
                operation_id = start()["OperationId"]
                break
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "OperationInProgressException":
                    raise
                self.display.line(
                    f"  another operation is running on {self.stackset}; waiting for it"
                )
                self._wait_for_running()
        else:
            raise DeployFailed(f"{label}: the StackSet stayed busy with other operations")
        self.operations.append(operation_id)
        status = self.wait(label, operation_id)
        if status != "SUCCEEDED":
            raise DeployFailed(
                f"{label}: operation {operation_id} ended {status}{self._failures(operation_id)}"
            )
        return operation_id

    def wait(self, label: str, operation_id: str) -> str:
        """Polls the operation until it ends; returns its final status."""
        deadline = time.monotonic() + self.timeout_seconds
        with self.display.waiting(label) as status:
            while True:
                op = self.cfn.describe_stack_set_operation(
                    StackSetName=self.stackset, OperationId=operation_id, **self.call_as
                )["StackSetOperation"]
                current = op["Status"]
                failed = op.get("StatusDetails", {}).get("FailedStackInstancesCount")
                status.update(current + (f", {failed} failed" if failed else ""))
                if current in DONE:
                    break
                if time.monotonic() > deadline:
                    raise DeployFailed(f"{label}: operation {operation_id} still {current}")
                time.sleep(self.poll_seconds)
        self.display.line(f"  {label}: {current}")
        return current

    def _wait_for_running(self) -> None:
        pages = self.cfn.get_paginator("list_stack_set_operations").paginate(
            StackSetName=self.stackset, **self.call_as
        )
        for page in pages:
            for op in page.get("Summaries", []):
                if op.get("Status") in ACTIVE:
                    self.wait(f"waiting for operation {op['OperationId']}", op["OperationId"])
        time.sleep(self.poll_seconds)

    def _failures(self, operation_id: str) -> str:
        try:
            pages = self.cfn.get_paginator("list_stack_set_operation_results").paginate(
                StackSetName=self.stackset, OperationId=operation_id, **self.call_as
            )
            failed = [
                f"{r['Account']} {r['Region']}: {r.get('StatusReason', r['Status'])}"
                for page in pages
                for r in page.get("Summaries", [])
                if r.get("Status") not in ("SUCCEEDED",)
            ]
        except ClientError:
            return ""
        return (": " + "; ".join(failed[:10])) if failed else ""
