"""The ``skillfund`` command. Entry points only: wiring and printing."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ledger.ids import mask_resident_id
from ops import metrics
from ops.runtime import open_ledger
from ops.settings import Settings
from streams.intake import ingest_paths

app = typer.Typer(
    name="skillfund",
    help=(
        "Books and fraud watch for the vocational skills-upgrade special account "
        "(职业技能提升行动专账). Reads the store named by SKILLFUND_DATA_DIR "
        "(default ./skillfund-data, SQLite) or SKILLFUND_DATABASE_URL (postgresql://…)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings() -> Settings:
    from ops.runtime import load_settings

    return load_settings()


@app.command()
def ingest(
    files: Annotated[Optional[list[Path]], typer.Argument(help="JSON Lines files; none or '-' reads standard input.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Records per transaction (1..10000).")] = None,
    detect: Annotated[bool, typer.Option("--detect/--no-detect", help="Run the detectors after ingest.")] = True,
    project: Annotated[bool, typer.Option("--project/--no-project", help="Catch the finance views up after ingest.")] = True,
) -> None:
    """Ingest contract records. Prints accepted, duplicates and rejections by reason.

    Every line becomes an accepted event or a durable rejection (see
    `skillfund rejections`). Re-running the same file changes nothing.
    """
    settings = _settings()
    ledger = open_ledger(settings)
    for f in files or []:
        if str(f) != "-" and not f.is_file():
            typer.echo(f"skillfund ingest: no such file: {f}", err=True)
            raise typer.Exit(2)
    started = [time.perf_counter()]

    def on_batch(result) -> None:
        now = time.perf_counter()
        metrics.observe_batch(result, now - started[0])
        started[0] = now

    summary = ingest_paths(ledger, files or [], batch_size=batch_size or settings.batch_size, on_batch=on_batch)
    typer.echo(f"accepted {summary.accepted}")
    typer.echo(f"duplicate {summary.duplicate} (already recorded, no change)")
    typer.echo(f"rejected {summary.rejected_total}")
    for reason in sorted(summary.rejected):
        typer.echo(f"  {reason} {summary.rejected[reason]}")
    for source, line, reason, detail in summary.examples[:10]:
        typer.echo(f"  e.g. {source}:{line}: {reason}: {_mask_text(detail)}")
    _after_ingest(settings, ledger, detect=detect, project=project)


def _after_ingest(settings: Settings, ledger, *, detect: bool, project: bool) -> None:
    """Downstream catch-up, in process (the embedded default): views, then alerts."""
    from ops import alerts_cli, finance_cli

    finance_cli.after_ingest(settings, ledger, detect=detect, project=project)
    alerts_cli.after_ingest(settings, ledger, detect=detect, project=project)


@app.command()
def rejections(
    format: Annotated[str, typer.Option("--format", help="table or jsonl")] = "table",
    replay: Annotated[bool, typer.Option("--replay", help="Re-submit open rejections (e.g. once a missing class exists).")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Include rejections already resolved by a replay.")] = False,
) -> None:
    """List rejected records with reason, line and field; or replay them."""
    settings = _settings()
    ledger = open_ledger(settings)
    if replay:
        result = ledger.replay_rejections()
        counts = result.counts()
        typer.echo(f"replayed {len(result.outcomes)}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        _after_ingest(settings, ledger, detect=True, project=True)
        return
    rows = ledger.all_rejections() if all_ else ledger.open_rejections()
    if format == "jsonl":
        out = sys.stdout
        for r in rows:
            # exactly the contract's keys; the field at fault is named in the detail
            d = {"type": r.record_type, "id": r.record_id, "reason": r.reason, "detail": r.detail}
            if r.line is not None:
                d["line"] = r.line
            out.write(json.dumps(d, ensure_ascii=False) + "\n")
        return
    if format != "table":
        typer.echo("skillfund rejections: --format is table or jsonl", err=True)
        raise typer.Exit(2)
    typer.echo(f"{'reason':<22} {'type':<15} {'id':<24} {'line':>7}  detail")
    for r in rows:
        detail = r.detail
        typer.echo(f"{r.reason:<22} {str(r.record_type or '-'):<15} {str(r.record_id or '-'):<24} {str(r.line or '-'):>7}  {_mask_text(detail)}")
    typer.echo(f"{len(rows)} open rejection(s)" if not all_ else f"{len(rows)} rejection(s)")


def _mask_text(text: str) -> str:
    import re

    return re.sub(r"\b\d{17}[\dX]\b", lambda m: mask_resident_id(m.group(0)), text)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Directory for records.jsonl and labels.jsonl.")],
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 1,
    classes: Annotated[int, typer.Option(help="Number of classes in the simulated year.")] = 60,
    fraud_rate: Annotated[float, typer.Option(help="Share of classes/claims with an injected fraud (0..1).")] = 0.1,
    region: Annotated[str, typer.Option(help="Pack region: 420100, 450000, 370306, 320500, 230000.")] = "320500",
    year: Annotated[int, typer.Option(help="Calendar year simulated.")] = 2024,
    bad_rate: Annotated[float, typer.Option(help="Share of deliberately bad records (for rejection drills).")] = 0.0,
) -> None:
    """Write a year of contract records with injected frauds, plus a labels file.

    The labels are for evaluation only: nothing in the ledger or the detectors reads them.
    """
    from ops.simulate import simulate as run, write

    if not 0 <= fraud_rate <= 1 or not 0 <= bad_rate <= 1:
        typer.echo("skillfund simulate: rates are between 0 and 1", err=True)
        raise typer.Exit(2)
    sim = run(seed=seed, classes=classes, fraud_rate=fraud_rate, region=region, year=year, bad_rate=bad_rate)
    paths = write(sim, out)
    typer.echo(f"wrote {len(sim.records)} records, {len(sim.labels)} labels, {len(sim.expected_rejections)} expected rejections")
    for name, p in paths.items():
        typer.echo(f"  {name}: {p}")


def main() -> None:
    app()


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
    classes: Annotated[int, typer.Option(help="Classes in the simulated year.")] = 120,
    region: Annotated[str, typer.Option(help="Pack region simulated.")] = "320500",
    fraud_rate: Annotated[float, typer.Option(help="Share of classes/claims with an injected fraud.")] = 0.08,
    bad_rate: Annotated[float, typer.Option(help="Share of deliberately bad records.")] = 0.003,
) -> None:
    """Simulate a year of one region's training, ingest it, print balances, rejections and alerts."""
    from detectors.alerts import contract_view
    from ops import alerts_cli, finance_cli
    from ops.simulate import simulate as run, write

    settings = _settings()
    out = settings.data_dir / "demo-input"
    typer.echo(f"== simulating {classes} classes in {region} (seed {seed}) into {out}")
    sim = run(seed=seed, classes=classes, fraud_rate=fraud_rate, region=region, bad_rate=bad_rate)
    paths = write(sim, out)
    typer.echo(f"   {len(sim.records)} records; the simulator planted {len(sim.labels)} frauds (labels kept aside)")
    typer.echo(f"== skillfund ingest {paths['records']}")
    ingest(files=[paths["records"]], batch_size=None, detect=True, project=True)
    typer.echo("\n== skillfund balances")
    finance_cli.balances_cmd(format="table", as_of=None, by="fund", region=None)
    typer.echo("\n== skillfund rejections (by reason)")
    ledger = open_ledger(settings)
    by_reason: dict[str, int] = {}
    for r in ledger.open_rejections():
        by_reason[r.reason] = by_reason.get(r.reason, 0) + 1
    for reason, n in sorted(by_reason.items()):
        typer.echo(f"   {reason:<22} {n}")
    typer.echo("\n== skillfund alerts (by kind)")
    alerts = alerts_cli.open_alerts(settings).list()
    by_kind: dict[str, list] = {}
    for a in alerts:
        by_kind.setdefault(a["kind"], []).append(a)
    for kind in sorted(by_kind):
        sev = sorted({a["severity"] for a in by_kind[kind]})
        typer.echo(f"   {kind:<26} {len(by_kind[kind]):>4}  severity {'/'.join(sev)}")
    if alerts:
        rank = {"critical": 3, "high": 2, "medium": 1, "low": 0}
        # a rule alert shows best what evidence means: the records an inspector checks
        example = max(alerts, key=lambda a: (a["kind"] != "anomalous_class", rank[a["severity"]], len(a["evidence"])))
        view = contract_view(example, case=True)
        typer.echo("\n== one alert, as an inspector sees it (skillfund alerts --format jsonl)")
        typer.echo(_mask_text(json.dumps(view, ensure_ascii=False, indent=2)[:4000]))
    typer.echo(f"\nstore: {settings.describe()}")
    typer.echo("next: skillfund alerts --format table | skillfund reconcile | skillfund disclose --region "
               f"{region} --period {2024}Q3 --format html | skillfund export --format hledger")


def _register() -> None:
    """The rooms' command sets: finance officers', inspectors', quality."""
    from ops import alerts_cli, evaluate, finance_cli, streams_cli

    for module in (finance_cli, alerts_cli, evaluate, streams_cli):
        module.register(app)


_register()


if __name__ == "__main__":
    main()
