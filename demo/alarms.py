"""The per-volume CloudWatch alarms' life where an account keeps them (cloudwatch_alarms).

by hand: moto stores alarms but never evaluates them. Each day the demo judges the value
the detector published against the alarms the detector created: the ceiling alarm against
its own threshold (read back with DescribeAlarms), the anomaly alarm against a local
estimate of CloudWatch's band (``demo/estimator.py``; the real model needs two weeks of data
and is not public). Every state change is set on the alarm and its ``CloudWatch Alarm State
Change`` event put on the member's default bus, as CloudWatch would: the member's forward
rule and the central rules then decide what is mailed (into ALARM, and back to OK as a
resolution) and what only reaches the audit queue (INSUFFICIENT_DATA -> OK).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backup_anomaly import contract
from demo.estimator import band, judge
from demo.events import alarm_state_change, as_entry
from generator.naming import Names

INITIAL = "INSUFFICIENT_DATA"


@dataclass
class VolumeAlarms:
    """The two alarms of one volume, as the demo evaluates them."""

    anomaly: str = INITIAL
    ceiling: str = INITIAL
    values: list[float] = field(default_factory=list)


class AlarmLife:
    """Evaluates one member's alarms, when its detector keeps them."""

    def __init__(self, member: Any, prefix: str):
        env = member.runtime.environment
        switch = contract.setting("cloudwatch_alarms")
        self.on = env.get(switch.env or "", "false") == "true"
        self.width = float(env.get(contract.setting("band_width").env or "", "2"))
        self.member = member
        self.prefix = prefix
        self.cloudwatch = member.session.client("cloudwatch", region_name=member.region)
        self.volumes: dict[str, VolumeAlarms] = {}
        self.changes: list[str] = []

    def evaluate(self, volume_id: str, value: int, when: datetime) -> list[str]:
        """The day's state changes of the volume's alarms, described in a few words."""
        if not self.on:
            return []
        state = self.volumes.setdefault(volume_id, VolumeAlarms())
        notes = []
        ceiling_name = Names.volume_ceiling_alarm(self.prefix, volume_id)
        ceiling = self._alarm(ceiling_name)
        if ceiling is not None:
            threshold = float(ceiling["Threshold"])
            new = "ALARM" if value > threshold else "OK"
            reason = f"Datapoint [{value}] {'>' if new == 'ALARM' else '<='} [{threshold:.0f}]"
            if new != state.ceiling:
                notes.append(self._set(ceiling, new, state.ceiling, reason, when, "ceiling"))
                state.ceiling = new
        expected = band(state.values, self.width)
        state.values.append(value)
        new = judge(value, expected)
        anomaly = self._alarm(Names.volume_alarm(self.prefix, volume_id))
        if anomaly is not None and expected is not None and new != state.anomaly:
            reason = (
                f"Datapoint [{value}] {'above' if new == 'ALARM' else 'within'} the band "
                f"(upper {expected.upper:.0f}, local estimate)"
            )
            notes.append(self._set(anomaly, new, state.anomaly, reason, when, "anomaly"))
            state.anomaly = new
        self.changes += notes
        return notes

    def _alarm(self, name: str) -> dict[str, Any] | None:
        found = self.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        return found[0] if found else None

    def _set(self, alarm: dict, new: str, old: str, reason: str, when: datetime, kind: str):
        self.cloudwatch.set_alarm_state(
            AlarmName=alarm["AlarmName"], StateValue=new, StateReason=reason
        )
        alarm = self.cloudwatch.describe_alarms(AlarmNames=[alarm["AlarmName"]])["MetricAlarms"][0]
        event = alarm_state_change(
            self.member.account, self.member.region, alarm, new, old, reason, when
        )
        # by hand: CloudWatch emits this on every state change; moto does not.
        self.member.events.put_events(Entries=[as_entry(event, when)])
        return f"{kind} alarm {old} -> {new}"
