"""The report's two plots as PNG bytes: verdicts over time and the most rewritten volumes.

matplotlib is imported lazily with the non-interactive Agg backend, never in a Lambda.
"""

from __future__ import annotations

import io

from correlator import queries
from report.collect import FleetReport
from report.tables import SEVERITIES

_COLOURS = {
    "none": "#9aa5b1",
    "low": "#f2c94c",
    "medium": "#f2994a",
    "high": "#eb5757",
    "critical": "#7b1fa2",
    queries.UNJUDGED: "#d9dde3",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    _pyplot().close(figure)
    return buffer.getvalue()


def verdicts_over_time(report: FleetReport) -> bytes:
    """Stacked bars per day: the measurements by verdict severity."""
    plt = _pyplot()
    figure, (ax, flagged) = plt.subplots(
        2, 1, figsize=(9, 4.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    days = [d.day for d in report.verdicts]
    bottom = [0] * len(days)
    for severity in (*reversed(SEVERITIES), queries.UNJUDGED):
        counts = [d.counts.get(severity, 0) for d in report.verdicts]
        ax.bar(days, counts, bottom=bottom, color=_COLOURS[severity], label=severity, width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_ylabel("measurements")
    ax.set_title(f"Verdicts per day, last {report.days} days")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    # Flagged ones are few among thousands of normal ones: their own panel.
    low = [0] * len(days)
    for severity in reversed(SEVERITIES[:4]):
        counts = [d.counts.get(severity, 0) for d in report.verdicts]
        flagged.bar(days, counts, bottom=low, color=_COLOURS[severity], width=0.8)
        low = [b + c for b, c in zip(low, counts, strict=True)]
    flagged.set_ylabel("low or above")
    figure.autofmt_xdate()
    figure.tight_layout()
    return _png(figure)


def top_rewritten(report: FleetReport) -> bytes:
    """Horizontal bars: each listed volume's share of written data rewritten."""
    plt = _pyplot()
    volumes = list(reversed(report.top_rewritten))
    figure, ax = plt.subplots(figsize=(9, 0.45 * max(3, len(volumes)) + 1))
    # A "$" in a member's name would start matplotlib's mathtext.
    labels = [f"{v.volume_id} ({v.name or v.account})".replace("$", r"\$") for v in volumes]
    values = [
        (v.share * 100 if v.share is not None else (v.percent_of_volume or 0.0)) for v in volumes
    ]
    colours = [_COLOURS.get(v.severity or queries.UNJUDGED, _COLOURS["none"]) for v in volumes]
    ax.barh(labels, values, color=colours)
    ax.set_xlabel("% of the written data rewritten (of the volume when written data is unknown)")
    ax.set_title(f"Most rewritten volumes, last {report.days} days")
    ax.tick_params(axis="y", labelsize=8)
    figure.tight_layout()
    return _png(figure)
