"""An emulation of the seed design: CloudWatch's anomaly band on every point, plus a ceiling.

The deployed seed alarms on ``ChangedBlocks`` above ``ANOMALY_DETECTION_BAND(m1, 2)`` on a
single daily breach, and on a static ceiling of 50 % of the written blocks. CloudWatch's
model is not public, so this is an APPROXIMATION: a band over the trailing 14 days of
points, center = median, spread = the largest of the standard deviation, 1.4826 x the
median absolute deviation, 15 % of the center and one block; it judges only once the
volume has 14 days of points (CloudWatch trains on up to two weeks). Before that only the
ceiling acts. Every alarm is an email, so an alarm is severity ``high``; the score is the
distance above the center in band spreads (what a band width threshold is swept over).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median, pstdev

from backup_anomaly.scoring import (
    Expected,
    HistoryEntry,
    Observation,
    Severity,
    Verdict,
)

WIDTH = 2.0
CEILING_PERCENT = 50.0
WINDOW_DAYS = 14.0
_DAY = 86400.0


def band_verdict(
    current: Observation,
    history: Sequence[HistoryEntry],
    width: float = WIDTH,
    ceiling_percent: float = CEILING_PERCENT,
) -> Verdict:
    """The seed design's alarm state for ``current``, as a verdict."""
    value = float(current.changed_blocks)
    since = current.epoch - WINDOW_DAYS * _DAY
    window = []
    for entry in reversed(history):  # newest first: stop at the window's start
        if entry.observation.epoch < since:
            break
        if entry.observation.epoch < current.epoch:
            window.append(float(entry.observation.changed_blocks))
    trained = bool(history) and history[0].observation.epoch <= since + _DAY / 2 and window
    reasons = []
    score = 0.0
    center = upper = 0.0
    if trained:
        center = median(window)
        spread = max(
            pstdev(window),
            1.4826 * median(abs(v - center) for v in window),
            0.15 * abs(center),
            1.0,
        )
        upper = center + width * spread
        score = max(0.0, (value - center) / spread)
        if value > upper:
            reasons.append(f"ChangedBlocks {value:.0f} above the band (upper {upper:.0f})")
    ceiling = None
    if current.written_blocks and ceiling_percent > 0:
        ceiling = math.ceil(current.written_blocks * ceiling_percent / 100.0)
        if value > ceiling:
            reasons.append(f"ChangedBlocks {value:.0f} above the ceiling ({ceiling})")
            score = max(score, width + 1e-9)
    severity = Severity.HIGH if reasons else Severity.NONE
    if not trained:
        reasons.append("band still training (fewer than 14 days of points)")
    share = value / current.written_blocks if current.written_blocks else None
    expected = Expected(
        low=0.0,
        median=center,
        high=upper,
        unit="blocks",
        basis="history" if trained else "none",
        points=len(window),
    )
    return Verdict(
        severity=severity,
        score=score,
        expected=expected,
        reasons=tuple(reasons),
        share=share,
        multiple_of_usual=value / center if trained and center > 0 else None,
        size_score=score,
        content=None,
    )
