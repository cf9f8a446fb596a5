"""The ``skillfund`` command. Entry points only: wiring and printing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ledger.ids import mask_resident_id
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
    try:
        return Settings()
    except Exception as e:  # a bad environment is the user's to fix: say what
        typer.echo(f"skillfund: bad configuration: {e}", err=True)
        raise typer.Exit(2) from e


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
    summary = ingest_paths(ledger, files or [], batch_size=batch_size or settings.batch_size)
    typer.echo(f"accepted {summary.accepted}")
    typer.echo(f"duplicate {summary.duplicate} (already recorded, no change)")
    typer.echo(f"rejected {summary.rejected_total}")
    for reason in sorted(summary.rejected):
        typer.echo(f"  {reason} {summary.rejected[reason]}")
    for source, line, reason, detail in summary.examples[:10]:
        typer.echo(f"  e.g. {source}:{line}: {reason}: {detail}")
    _after_ingest(settings, ledger, detect=detect, project=project)


def _after_ingest(settings: Settings, ledger, *, detect: bool, project: bool) -> None:
    """Downstream catch-up, in process (the embedded default)."""
    for hook in _AFTER_INGEST:
        hook(settings, ledger, detect=detect, project=project)


_AFTER_INGEST: list = []


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
            d = {"type": r.record_type, "id": r.record_id, "reason": r.reason, "detail": r.detail}
            if r.line is not None:
                d["line"] = r.line
            if r.field:
                d["field"] = r.field
            if r.source:
                d["source"] = r.source
            if all_:
                d["resolved"] = r.resolved
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
    _register_rooms()
    app()


def _register_rooms() -> None:
    for module in _COMMAND_MODULES:
        __import__(module, fromlist=["register"]).register(app)


_COMMAND_MODULES: tuple[str, ...] = ()


if __name__ == "__main__":
    main()
