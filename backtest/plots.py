"""The backtest's three plots (PNG): a volume's timeline, the fleet's scores, the trade-off.

matplotlib is a development dependency, never in the Lambda: it is imported here, lazily,
with the non-interactive Agg backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from backtest import rates
from backtest.replay import Judged
from backup_anomaly.scoring import DEFAULT_CONFIG, ScoringConfig, Severity

TIMELINE = "timeline.png"
SCORES = "scores.png"
TRADEOFF = "tradeoff.png"
_COLOURS = {
    Severity.NONE: "#9aa5b1",
    Severity.LOW: "#f2c94c",
    Severity.MEDIUM: "#f2994a",
    Severity.HIGH: "#eb5757",
    Severity.CRITICAL: "#7b1fa2",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pick_volume(judged: Sequence[Judged], volume: str | None = None) -> str | None:
    """The volume to draw: ``volume`` (key or id), else the first attacked one, else the
    one with the highest score."""
    if volume is not None:
        for item in judged:
            if volume in (item.measurement.volume_key, item.measurement.volume_id):
                return item.measurement.volume_key
        return None
    attacked = [i for i in judged if i.measurement.labels.is_attack and i.position >= 20]
    if attacked:
        return attacked[0].measurement.volume_key
    best = max(judged, key=lambda i: i.verdict.score, default=None)
    return best.measurement.volume_key if best is not None else None


def timeline(judged: Sequence[Judged], volume_key: str, path: str) -> None:
    """One volume: its measurements, the expected band, the verdicts and any labels."""
    plt = _pyplot()
    items = [i for i in judged if i.measurement.volume_key == volume_key]
    shares = items and items[0].verdict.expected.unit == "share"
    scale = 100.0 if shares else 1.0
    times = [i.observation.time for i in items]
    values = [
        (
            i.verdict.share
            if shares and i.verdict.share is not None
            else i.observation.changed_blocks
        )
        * scale
        for i in items
    ]
    low = [i.verdict.expected.low * scale for i in items]
    high = [i.verdict.expected.high * scale for i in items]
    median = [i.verdict.expected.median * scale for i in items]
    figure, axis = plt.subplots(figsize=(11, 4.5))
    axis.fill_between(times, low, high, step="mid", color="#56ccf2", alpha=0.25, label="expected")
    axis.plot(times, median, color="#2d9cdb", linewidth=1, label="usual")
    axis.plot(times, values, color="#333333", linewidth=0.8)
    for severity in Severity:
        chosen = [
            (t, v)
            for t, v, i in zip(times, values, items, strict=True)
            if i.verdict.severity is severity
        ]
        if chosen:
            axis.scatter(
                *zip(*chosen, strict=True),
                s=28,
                color=_COLOURS[severity],
                zorder=3,
                label=severity.value,
            )
    attacked = [
        (t, v)
        for t, v, i in zip(times, values, items, strict=True)
        if i.measurement.labels.is_attack
    ]
    if attacked:
        axis.scatter(
            *zip(*attacked, strict=True),
            s=110,
            facecolors="none",
            edgecolors="black",
            zorder=4,
            label="labelled attack",
        )
    axis.set_yscale("log")
    positive = [v for v in values if v > 0]
    if positive:
        # The band's lower end reaches far down on a log scale; the measurements matter.
        axis.set_ylim(bottom=min(positive) / 5.0, top=max(max(positive), max(high)) * 2.0)
    axis.set_ylabel("changed, % of written data" if shares else "changed blocks")
    axis.set_title(
        f"{items[0].measurement.volume_id}: measurements, expected band, verdicts"
        if items
        else volume_key
    )
    axis.legend(loc="upper left", fontsize=8, ncol=4)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def scores(judged: Sequence[Judged], path: str, config: ScoringConfig = DEFAULT_CONFIG) -> None:
    """The fleet's score distribution, ordinary and labelled-attack measurements apart."""
    plt = _pyplot()
    normal = [i.verdict.score for i in judged if not i.measurement.labels.is_attack]
    attack = [i.verdict.score for i in judged if i.measurement.labels.is_attack]
    top = max([*normal, *attack, config.critical_score + 1.0])
    bins = [b * top / 60.0 for b in range(61)]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    axis.hist(normal, bins=bins, color="#9aa5b1", label=f"not labelled attack ({len(normal):,})")
    if attack:
        axis.hist(
            attack,
            bins=bins,
            color="#eb5757",
            alpha=0.7,
            label=f"labelled attack ({len(attack):,})",
        )
    for name in ("low", "medium", "high", "critical"):
        value = getattr(config, f"{name}_score")
        axis.axvline(value, color="black", linestyle=":", linewidth=1)
        axis.text(value, 1, f" {name}", rotation=90, va="bottom", fontsize=8)
    axis.set_yscale("log")
    axis.set_xlabel("score (-log10 of the chance that ordinary change looks like this)")
    axis.set_ylabel("measurements")
    axis.set_title("Score distribution")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def tradeoff(judged: Sequence[Judged], path: str, config: ScoringConfig = DEFAULT_CONFIG) -> None:
    """False alerts against detection (first backup of each attack) as the threshold moves."""
    plt = _pyplot()
    thresholds = [t / 10.0 for t in range(0, 121)]
    rows = rates.sweep(judged, thresholds)
    figure, axis = plt.subplots(figsize=(7.5, 5))
    if any(recall is not None for _, _, recall in rows):
        axis.plot(
            [fa for _, fa, _ in rows], [100.0 * (r or 0.0) for _, _, r in rows], color="#2d9cdb"
        )
        for name in ("low", "medium", "high", "critical"):
            value = getattr(config, f"{name}_score")
            _, fa, recall = rates.sweep(judged, [value])[0]
            axis.scatter([fa], [100.0 * (recall or 0.0)], color="black", zorder=3)
            axis.annotate(
                f"{name} ({value:g})",
                (fa, 100.0 * (recall or 0.0)),
                fontsize=8,
                textcoords="offset points",
                xytext=(5, -10),
            )
        axis.set_xlabel("false alerts per 1,000 volume-days")
        axis.set_ylabel("attacks flagged at their first backup, %")
        axis.set_title("False alerts against detection as the threshold moves")
    else:
        axis.plot(thresholds, [fa for _, fa, _ in rows], color="#2d9cdb")
        axis.set_xlabel("score threshold")
        axis.set_ylabel("alerts per 1,000 volume-days (no labels)")
        axis.set_title("Alerts as the threshold moves")
    axis.set_xscale("symlog", linthresh=0.1)
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_all(
    judged: Sequence[Judged],
    directory: str,
    config: ScoringConfig = DEFAULT_CONFIG,
    volume: str | None = None,
) -> list[str]:
    """Writes the three plots into ``directory``; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    written = []
    chosen = pick_volume(judged, volume)
    if chosen is not None:
        path = os.path.join(directory, TIMELINE)
        timeline(judged, chosen, path)
        written.append(path)
    for name, draw in ((SCORES, scores), (TRADEOFF, tradeoff)):
        path = os.path.join(directory, name)
        draw(judged, path, config)
        written.append(path)
    return written
