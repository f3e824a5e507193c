"""Detect StackSet drift and report it per instance.

Exit code (``build.py drift``): 0 every instance IN_SYNC, 2 at least one DRIFTED (or drift
unknown for some), 1 the detection operation itself failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape

from generator.config.model import OrgConfig
from generator.layout import layout
from rollout.deployed import DeployedInstance, list_instances
from rollout.display import Display
from rollout.sessions import AwsSessions
from rollout.stacks import DeployFailed
from rollout.stackset_ops import OperationRunner


@dataclass(frozen=True)
class DriftReport:
    """The drift status of every instance."""

    instances: list[DeployedInstance]
    error: str | None = None

    @property
    def drifted(self) -> list[DeployedInstance]:
        return [i for i in self.instances if i.drift_status != "IN_SYNC"]

    @property
    def exit_code(self) -> int:
        if self.error:
            return 1
        return 2 if self.drifted else 0


def detect(
    config: OrgConfig, sessions: AwsSessions, display: Display, poll_seconds: float = 10.0
) -> DriftReport:
    """Runs DetectStackSetDrift, waits for it, and prints each instance's drift status."""
    stackset = layout(config).stackset
    name = stackset.name
    cfn = sessions.client("cloudformation", stackset.admin_account, config.security.home_region)
    runner = OperationRunner(cfn, name, stackset.call_as_args(), display, poll_seconds)
    error = None
    try:
        runner.run(
            f"detect drift of {name}",
            lambda: cfn.detect_stack_set_drift(
                StackSetName=name,
                OperationPreferences=stackset.operation_preferences(),
                **stackset.call_as_args(),
            ),
        )
    except DeployFailed as exc:
        error = str(exc)
        display.line(f"[red]drift detection failed[/]: {escape(str(exc))}")
    report = DriftReport(
        sorted(list_instances(cfn, stackset), key=lambda i: (i.account, i.region)), error
    )
    for i in report.instances:
        color = "green" if i.drift_status == "IN_SYNC" else "red"
        display.line(f"  {i.account} {i.region}: [{color}]{i.drift_status or 'UNKNOWN'}[/]")
    display.line(
        f"{len(report.instances) - len(report.drifted)} in sync, "
        f"{len(report.drifted)} drifted or unknown"
    )
    return report
