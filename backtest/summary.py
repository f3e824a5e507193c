"""The backtest's printed summary: rates by severity, recall per label and attack kind."""

from __future__ import annotations

from backtest.rates import SEVERITIES, Recall
from backtest.run import Result


def _rate(recall: Recall) -> str:
    rate = recall.rate
    if rate is None:
        return "n/a (none in the input)"
    return f"{100.0 * rate:.1f} % ({recall.hits}/{recall.total})"


def lines(result: Result) -> list[str]:
    """The summary of one backtest, as lines of text."""
    alerts = result.alerts
    replayed = result.replay
    out = [
        f"model {result.model}: {alerts.measurements:,} measurements of {alerts.volumes:,} "
        f"volumes, {alerts.volume_days:,.0f} volume-days "
        f"({replayed.duplicates:,} duplicate events dropped)",
    ]
    if replayed.conflicts:
        first, repeated = replayed.conflicts[0]
        out.append(
            f"  warning: {len(replayed.conflicts)} duplicate measurementId(s) with different "
            f"numbers (first kept), e.g. lines {first} and {repeated}"
        )
    what = "false alerts" if alerts.labelled else "alerts (no labels: every alert counted)"
    out.append(f"  {what} per 1,000 volume-days:")
    for severity in SEVERITIES:
        out.append(
            f"    {severity.value + ' or above':<18} {alerts.per_1000(severity):8.2f}"
            f"   ({alerts.false_alerts[severity]:,})"
        )
    if alerts.labelled:
        out.append("  recall, measurements flagged high or above:")
        for recall in result.recall:
            out.append(f"    {recall.name:<32} {_rate(recall)}")
        out.append("  recall of attack episodes, high or above:")
        for recall in result.headlines:
            out.append(f"    {recall.name:<38} {_rate(recall)}")
    out.append(f"  judged in {result.seconds:.1f} s")
    return out
