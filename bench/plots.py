"""PNG plots of the benchmark figures under docs/bench/: latency percentiles per load, throughput vs the ceiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend


def latency(ingest: dict[str, Any], out: Path) -> Path:
    """API and end-to-end latency p50/p99 at each load level (log scale, with the targets)."""
    levels = ingest["ingest"]
    names = [level["name"] for level in levels]
    series = [("API p50", "api_p50_ms"), ("API p99", "api_p99_ms"), ("end-to-end p50", "e2e_p50_ms"),
              ("end-to-end p99", "e2e_p99_ms")]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(series)
    for i, (label, field) in enumerate(series):
        ax.bar([x + i * width for x in range(len(names))], [level[field] for level in levels], width, label=label)
    ax.axhline(50, color="grey", linestyle="--", linewidth=1, label="target API p99 50 ms")
    ax.axhline(1000, color="black", linestyle=":", linewidth=1, label="target end-to-end p99 1 s")
    ax.set_yscale("log")
    ax.set_ylabel("milliseconds")
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(names))], names)
    ax.set_title(f"Ingest latency ({ingest['date']}, {ingest['machine']})")
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    return _save(fig, out / "latency.png")


def throughput(ingest: dict[str, Any], ledger: dict[str, Any] | None, out: Path) -> Path:
    """Transactions/s per load level, messages/s handled against the no-op actor's ceiling, import rows/s."""
    levels = ingest["ingest"]
    labels = [f"ingest tx/s\n{level['name']}" for level in levels]
    values = [level["accepted_per_s"] for level in levels]
    targets: list[float | None] = [level["offered_per_s"] or 500.0 for level in levels]  # all offered; 500/s
    if ingest.get("handled_messages_per_s"):
        labels += ["pool messages/s", "no-op actor\nmessages/s"]
        values += [ingest["handled_messages_per_s"], ingest["noop_actor_messages_per_s"]]
        targets += [None, None]
    if ledger and "import" in ledger:
        labels.append("import rows/s")
        values.append(ledger["import"]["rows_per_s"])
        targets.append(5000.0)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar(range(len(values)), values, color="tab:blue")
    for x, target in enumerate(targets):
        if target:
            ax.plot([x - 0.4, x + 0.4], [target, target], color="red", linewidth=2)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("per second (red: target; at a fixed load, what was offered)")
    ax.set_title(f"Throughput ({ingest['date']}, {ingest['machine']})")
    return _save(fig, out / "throughput.png")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
