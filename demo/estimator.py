"""A local stand-in for CloudWatch anomaly detection, to judge the demo's measurements.

This APPROXIMATES CloudWatch's model, which is not public and needs about two weeks of
data: a band over the trailing window, center = median, spread = the larger of the
standard deviation, 1.4826 x the median absolute deviation (robust to an earlier outlier),
15 % of the center and one block; upper = center + width x spread. The
deployed alarms use the real ``ANOMALY_DETECTION_BAND(m1, width)``; moto cannot evaluate
alarms, so the demo judges with this and sets the alarm state itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median, pstdev

WINDOW = 14  # days of history the band looks at
MIN_POINTS = 7  # before this, the model is "still training": no verdict


@dataclass(frozen=True)
class Band:
    """The expected range for the next value."""

    center: float
    upper: float
    points: int


def band(history: list[float], width: float) -> Band | None:
    """The band from the trailing window of ``history``; None while training."""
    window = history[-WINDOW:]
    if len(window) < MIN_POINTS:
        return None
    center = median(window)
    spread = max(
        pstdev(window),
        1.4826 * median(abs(v - center) for v in window),
        0.15 * abs(center),
        1.0,
    )
    return Band(center=center, upper=center + width * spread, points=len(window))


def judge(value: float, expected: Band | None) -> str:
    """CloudWatch alarm state for ``value``: ALARM above the band (GreaterThanUpperThreshold)."""
    if expected is None:
        return "INSUFFICIENT_DATA"
    return "ALARM" if value > expected.upper else "OK"
