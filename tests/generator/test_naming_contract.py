"""The generator and the detector name the same things the same way.

The detector builds per-volume alarm names from ALARM_PREFIX (set by the member template
from the config); the central rule, the demo and the deploy code use ``generator.naming``.
If either side changes its format, alerts stop matching: these tests catch that.
"""

import pytest

from backup_anomaly import alarms, events, settings
from generator import naming
from generator.naming import Names


@pytest.mark.parametrize("prefix", ["backup-anomaly-", "org.x_"])
@pytest.mark.parametrize("volume_id", ["vol-0b5ae24f2ee72d926", "vol-1"])
def test_alarm_names_agree(prefix, volume_id):
    detector = settings.load({"STATE_TABLE": "t", "ALARM_PREFIX": prefix})
    assert alarms.anomaly_alarm_name(detector, volume_id) == Names.volume_alarm(prefix, volume_id)
    assert alarms.ceiling_alarm_name(detector, volume_id) == Names.volume_ceiling_alarm(
        prefix, volume_id
    )


def test_operational_alarms_share_the_volume_alarm_prefix():
    # The member forward rule matches alarm names by prefix: the DLQ and error alarms must
    # carry it so they reach the security account like anomalies do.
    for name in (Names.dlq_alarm("p-"), Names.errors_alarm("p-")):
        assert name.startswith("p-")


def test_event_source_default_is_the_generators():
    assert settings.load({"STATE_TABLE": "t"}).event_source == naming.EVENT_SOURCE


def test_the_central_rules_match_what_the_detector_puts():
    # The detector's events and reasons are spelled once (its package); the central rules
    # are built from them. A rule matching another spelling would silence the alert.
    from backup_anomaly.records import ResetReason
    from generator.templates import central
    from tests.generator import template_helpers as h

    rules = [
        r["Properties"]["EventPattern"]
        for r in central.build(h.config("example"), "k.zip").to_dict()["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    ]
    detail_types = {t for pattern in rules for t in pattern.get("detail-type", [])}
    assert {
        events.MEASURED_DETAIL_TYPE,
        events.BASELINE_RESET_DETAIL_TYPE,
        events.ANOMALY_DETECTED_DETAIL_TYPE,
        events.HEARTBEAT_DETAIL_TYPE,
        events.SCAN_JOB_DETAIL_TYPE,
    } <= detail_types
    # Resets of every reason go to the correlator (a deleted snapshot is an incident there).
    assert ResetReason.PREVIOUS_SNAPSHOT_MISSING.value not in str(rules)
