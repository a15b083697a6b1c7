"""The last step of `make bench`: one table of every figure in docs/bench/*.json against its target, written to
docs/bench/summary.json, with PNG plots beside it.

Run: `python -m bench.summary` (reads what the benchmarks wrote; runs nothing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import plots

OUT = Path(__file__).resolve().parent.parent / "docs" / "bench"
#: Files this summary writes itself (never read back as figures).
OWN = {"summary.json"}


def load(out: Path = OUT) -> dict[str, dict[str, Any]]:
    """Every benchmark's JSON by name."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.name not in OWN}


def _row(what: str, figure: Any, target: str = "", met: bool | None = None, source: str = "") -> dict[str, Any]:
    verdict = "" if met is None else ("met" if met else "MISSED")
    return {"what": what, "figure": figure, "target": target, "verdict": verdict, "source": source}


def ingest_rows(ingest: dict[str, Any]) -> list[dict[str, Any]]:
    """Ingest at each load level, and the machine's ceiling."""
    rows = []
    for level in ingest.get("ingest", []):
        name = level["name"]
        fixed = level.get("offered_per_s") is not None
        floor = 0.95 * level["offered_per_s"] if fixed else 500  # a fixed load is met when it is sustained
        rows.append(_row(f"ingest {name}: accepted tx/s", level["accepted_per_s"], f">= {floor:g}",
                         level["accepted_per_s"] >= floor, "ingest"))
        rows.append(_row(f"ingest {name}: API p50 / p99 ms", f"{level['api_p50_ms']} / {level['api_p99_ms']}",
                         "p99 < 50" if fixed else "", level["api_p99_ms"] < 50 if fixed else None, "ingest"))
        rows.append(_row(f"ingest {name}: end-to-end p50 / p99 ms", f"{level['e2e_p50_ms']} / {level['e2e_p99_ms']}",
                         "p99 < 1000" if fixed else "", level["e2e_p99_ms"] < 1000 if fixed else None, "ingest"))
        if level.get("errors"):
            rows.append(_row(f"ingest {name}: errors", level["errors"], "0", False, "ingest"))
        if level.get("cpu_ms_per_transaction"):
            cpu = level["cpu_ms_per_transaction"]
            parts = ", ".join(f"{k} {v}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if k != "total")
            rows.append(_row(f"ingest {name}: CPU ms per transaction", f"{cpu['total']} ({parts})", source="ingest"))
    if "noop_actor_messages_per_s" in ingest:
        rows.append(_row("no-op Dramatiq actor: messages/s (the ceiling)", ingest["noop_actor_messages_per_s"],
                         source="ingest"))
    if ingest.get("handled_messages_per_s"):
        rows.append(_row("our pools: messages/s handled (ratio to the ceiling)",
                         f"{ingest['handled_messages_per_s']} ({ingest['ratio_to_ceiling']:.0%})", source="ingest"))
    return rows


def ledger_rows(ledger: dict[str, Any]) -> list[dict[str, Any]]:
    """The import and the transaction list."""
    rows = []
    if "import" in ledger:
        imp = ledger["import"]
        rows.append(_row(f"import {imp['rows']:,} rows, {imp['rules']} rules: rows/s", imp["rows_per_s"], ">= 5000",
                         imp["rows_per_s"] >= 5000, "ledger"))
    for name, figure in ledger.get("listing", {}).items():
        if isinstance(figure, dict):
            rows.append(_row(f"GET /transactions ({name}) p50 / p95 ms", f"{figure['p50_ms']} / {figure['p95_ms']}",
                             source="ledger"))
    return rows


def chaos_rows(chaos: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest chaos run's verdict."""
    faults = ", ".join(f"{n} {k}" for k, n in sorted(chaos.get("fault_counts", {}).items()))
    return [_row(f"chaos ({chaos.get('mode')} mode, {chaos.get('date')}): faults", faults, source="chaos"),
            _row("chaos: violations (lost, duplicated, inconsistent)", len(chaos.get("violations", [])), "0",
                 not chaos.get("violations"), "chaos")]


def other_rows(name: str, figures: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Any other benchmark (e.g. reports): every number it wrote, by its path."""
    rows = []
    for key, value in figures.items():
        if key in ("date", "machine", "command"):
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += other_rows(name, value, f"{path}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            rows.append(_row(f"{name}: {path}", value, source=name))
    return rows


def table(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every figure as rows, in a fixed order: ingest, ledger, the others, chaos."""
    rows = ingest_rows(results.get("ingest", {})) + ledger_rows(results.get("ledger", {}))
    for name, figures in results.items():
        if name not in ("ingest", "ledger", "chaos"):
            rows += other_rows(name, figures)
    if "chaos" in results:
        rows += chaos_rows(results["chaos"])
    return rows


def render(rows: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> str:
    """The printed table."""
    dates = {f"{n} {r.get('date', '?')}" for n, r in results.items()}
    machines = {r.get("machine") for r in results.values() if r.get("machine")}
    width = max([len(r["what"]) for r in rows] + [10]) + 2
    lines = [f"benchmarks: {', '.join(sorted(dates))}; {'; '.join(sorted(machines))}", "",
             f"{'what':<{width}}{'figure':>22}  {'target':<12}verdict"]
    for r in rows:
        lines.append(f"{r['what']:<{width}}{str(r['figure']):>22}  {r['target']:<12}{r['verdict']}")
    return "\n".join(lines)


def main() -> None:
    """Print the table; write summary.json and the plots."""
    results = load()
    rows = table(results)
    print(render(rows, results))
    (OUT / "summary.json").write_text(json.dumps({"rows": rows}, indent=2))
    made = []
    if "ingest" in results and results["ingest"].get("ingest"):
        made += [plots.latency(results["ingest"], OUT), plots.throughput(results["ingest"], results.get("ledger"), OUT)]
    print("\nplots: " + ", ".join(str(p.relative_to(OUT.parent.parent)) for p in made))


if __name__ == "__main__":
    main()
