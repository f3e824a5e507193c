"""Writing the verdict file: one JSON line per distinct measurement, atomically.

The file is written to a temporary name beside the target and renamed over it, so a reader
(or a failed run) never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable

from backtest.replay import Judged


def verdict_line(item: Judged) -> dict:
    """The contract's fields for one measurement, plus the expected range and the share."""
    verdict = item.verdict
    return {
        "measurementId": item.measurement.measurement_id,
        "volumeId": item.measurement.volume_id,
        "completionTime": item.observation.time.isoformat(),
        "severity": verdict.severity.value,
        "score": round(verdict.score, 3),
        "reasons": list(verdict.reasons),
        "share": round(verdict.share, 6) if verdict.share is not None else None,
        "expected": verdict.expected.to_detail(),
    }


def write_verdicts(path: str, judged: Iterable[Judged]) -> int:
    """Writes one line per judged measurement to ``path``; returns the number of lines."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".verdicts-", suffix=".tmp", dir=directory)
    count = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            for item in judged:
                out.write(json.dumps(verdict_line(item), separators=(",", ":")))
                out.write("\n")
                count += 1
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return count
