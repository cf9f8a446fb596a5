"""``skillfund evaluate``: detection quality against the simulator's labels.

Simulate a year into a temporary SQLite store, ingest it, run every detector,
then compare the stored alerts with the labels the simulator wrote:

* an alert **matches** a label when the kinds are equal and every field of
  the label's subject has the same value in the alert's subject (an alert may
  carry more subject fields than the label);
* per kind: recall = labels matched by at least one alert / labels;
  precision = alerts matching at least one label / alerts; false positives are
  the alerts that match no label (a few are printed as examples);
* ``anomalous_class`` is model-based and the simulator injects concrete
  frauds, not "anomalies": its truth is every class that a label names
  (``subject.class_id`` of any kind, or an explicit anomalous_class label).
  ROC-AUC is computed from the anomaly scores of all complete classes.

The pure functions (``match``, ``evaluate``, ``roc_auc``, ``anomaly_truth``)
take plain dicts and are what the tests check; ``run_evaluation`` does the
I/O; ``register`` adds the command to the CLI.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

ANOMALY_KIND = "anomalous_class"
EXAMPLES_MAX = 3


# ----------------------------------------------------------------- pure


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def as_alert(obj: Any) -> dict[str, Any]:
    """An alert (dict, AlertDraft or stored alert object) as a plain dict."""
    return {
        "kind": _get(obj, "kind"),
        "subject": dict(_get(obj, "subject") or {}),
        "score": _get(obj, "score"),
        "severity": _get(obj, "severity"),
        "summary": _get(obj, "summary", "") or "",
        "alert_id": _get(obj, "alert_id"),
    }


def match(alert: Mapping[str, Any], label: Mapping[str, Any]) -> bool:
    """Same kind, and every label subject field equal in the alert's subject."""
    if alert.get("kind") != label.get("kind"):
        return False
    subject = alert.get("subject") or {}
    return all(subject.get(k) == v for k, v in (label.get("subject") or {}).items())


def anomaly_truth(labels: Iterable[Mapping[str, Any]], kind: str | None = None) -> set[str]:
    """Classes named by a label's subject.class_id (of ``kind`` only, when given)."""
    out: set[str] = set()
    for label in labels:
        if kind is not None and label.get("kind") != kind:
            continue
        cid = (label.get("subject") or {}).get("class_id")
        if cid:
            out.add(cid)
    return out


@dataclass
class KindResult:
    kind: str
    labels: int = 0
    alerts: int = 0
    labels_found: int = 0
    alerts_true: int = 0
    false_positives: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)  # false positives
    missed: list[dict[str, Any]] = field(default_factory=list)  # labels no alert matched

    @property
    def recall(self) -> float | None:
        return self.labels_found / self.labels if self.labels else None

    @property
    def precision(self) -> float | None:
        return self.alerts_true / self.alerts if self.alerts else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recall"] = self.recall
        d["precision"] = self.precision
        return d


def evaluate(
    alerts: Iterable[Any],
    labels: Iterable[Mapping[str, Any]],
    *,
    examples: int = EXAMPLES_MAX,
    anomaly: bool | None = None,
) -> dict[str, KindResult]:
    """Per-kind recall, precision and false positives of ``alerts`` against ``labels``.

    ``anomalous_class`` alerts are judged against ``anomaly_truth(labels)``
    (a class any label names), unless the labels carry anomalous_class
    labels of their own, which then count like any other kind's. The
    anomalous_class row appears when ``anomaly`` is true, or (None) when
    there are anomalous_class alerts.
    """
    alerts = [as_alert(a) for a in alerts]
    labels = [dict(lb) for lb in labels]
    own_anomaly_labels = any(lb.get("kind") == ANOMALY_KIND for lb in labels)
    if not own_anomaly_labels:
        labels_for_anomaly = [
            {"kind": ANOMALY_KIND, "subject": {"class_id": cid}, "note": "class named by a label"}
            for cid in sorted(anomaly_truth(labels))
        ]
        emit_anomaly = anomaly if anomaly is not None else any(a["kind"] == ANOMALY_KIND for a in alerts)
    else:
        labels_for_anomaly = []
        emit_anomaly = False
    results: dict[str, KindResult] = {}

    def res(kind: str) -> KindResult:
        if kind not in results:
            results[kind] = KindResult(kind)
        return results[kind]

    kinds_naming: dict[tuple[str, str], list[str]] = {}  # (field, value) -> label kinds naming it
    for lb in labels:
        for k, v in (lb.get("subject") or {}).items():
            names = kinds_naming.setdefault((k, v), [])
            if lb["kind"] not in names:
                names.append(lb["kind"])
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for lb in labels:
        by_kind.setdefault(lb["kind"], []).append(lb)
    if emit_anomaly:
        by_kind[ANOMALY_KIND] = labels_for_anomaly
    alerts_by_kind: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        alerts_by_kind.setdefault(a["kind"], []).append(a)

    for kind in sorted(set(by_kind) | set(alerts_by_kind)):
        r = res(kind)
        kls = by_kind.get(kind, [])
        kas = alerts_by_kind.get(kind, [])
        r.labels = len(kls)
        r.alerts = len(kas)
        found = [False] * len(kls)
        for a in kas:
            hit = False
            for i, lb in enumerate(kls):
                if match(a, lb):
                    found[i] = True
                    hit = True
            if hit:
                r.alerts_true += 1
            else:
                r.false_positives += 1
                if len(r.examples) < examples:
                    ex = {"subject": a["subject"], "score": a.get("score"), "summary": a.get("summary", "")}
                    other = sorted({n for kv in a["subject"].items() for n in kinds_naming.get(kv, ()) if n != kind})
                    if other:
                        ex["labelled_as"] = other  # a true fraud of another kind
                    r.examples.append(ex)
        r.labels_found = sum(found)
        r.missed = [
            {"subject": kls[i].get("subject"), "note": kls[i].get("note", "")} for i in range(len(kls)) if not found[i]
        ][:examples]
    return results


def roc_auc(scores: Mapping[str, float], positives: Iterable[str]) -> float | None:
    """ROC-AUC of ``scores`` (higher = more anomalous) against the positive ids.

    Computed by rank (Mann-Whitney U, ties counted half), so no dependency
    on scikit-learn here; None when only one class is present.
    """
    pos = set(positives)
    items = sorted(scores.items(), key=lambda kv: kv[1])
    n_pos = sum(1 for k, _ in items if k in pos)
    n_neg = len(items) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = 0.0
    i = 0
    while i < len(items):  # average ranks over ties
        j = i
        while j + 1 < len(items) and items[j + 1][1] == items[i][1]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            if items[k][0] in pos:
                rank_sum += avg
        i = j + 1
    u = rank_sum - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def precision_at(scores: Mapping[str, float], positives: Iterable[str], threshold: float) -> tuple[float | None, float | None]:
    """(precision, recall) of flagging every class scoring at or above ``threshold``."""
    pos = set(positives)
    flagged = [k for k, v in scores.items() if v >= threshold]
    tp = sum(1 for k in flagged if k in pos)
    relevant = sum(1 for k in scores if k in pos)
    return (tp / len(flagged) if flagged else None, tp / relevant if relevant else None)


# ----------------------------------------------------------------- report


@dataclass
class Evaluation:
    seed: int
    classes: int
    fraud_rate: float
    region: str
    records: int
    accepted: int
    rejected: int
    labels: int
    alerts: int
    kinds: dict[str, KindResult]
    anomaly_auc: float | None  # vs the anomalous_class labels
    anomaly_auc_any: float | None  # vs every class a label names (any kind)
    anomaly_scored: int
    anomaly_positives: int
    anomaly_positives_any: int
    anomaly_method: str
    anomaly_alerts_on_fraud: float | None  # share of anomalous_class alerts on a class some label names
    anomaly_warmed_up: bool = True  # False: too few complete classes for the model to raise alerts
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "kinds"}
        d["kinds"] = {k: r.to_dict() for k, r in self.kinds.items()}
        return d


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def format_table(ev: Evaluation) -> str:
    lines = [
        f"seed {ev.seed}, {ev.classes} classes, fraud rate {ev.fraud_rate}, region {ev.region}: "
        f"{ev.records} records ({ev.accepted} accepted, {ev.rejected} rejected), {ev.labels} labels, {ev.alerts} alerts",
        "",
        f"{'kind':<28} {'labels':>6} {'alerts':>6} {'found':>6} {'recall':>7} {'precision':>9} {'FP':>4}",
    ]
    for kind in sorted(ev.kinds):
        r = ev.kinds[kind]
        lines.append(
            f"{kind:<28} {r.labels:>6} {r.alerts:>6} {r.labels_found:>6} {_pct(r.recall):>7} {_pct(r.precision):>9} {r.false_positives:>4}"
        )
    lines.append("")
    lines.append(
        f"anomalous_class ROC-AUC {_pct(ev.anomaly_auc)} against its own labels "
        f"({ev.anomaly_scored} complete classes scored, {ev.anomaly_positives} labelled; model {ev.anomaly_method})"
    )
    lines.append(
        f"anomalous_class ROC-AUC {_pct(ev.anomaly_auc_any)} against every class a label of any kind names "
        f"({ev.anomaly_positives_any} classes); {_pct(ev.anomaly_alerts_on_fraud)} of its alerts are on such a class"
    )
    if not ev.anomaly_warmed_up:
        lines.append(
            "anomalous_class raised nothing: fewer complete classes than the model's warm-up needs "
            "(its scores were computed at the end, for the ROC-AUC only)"
        )
    fps = [(k, r) for k, r in sorted(ev.kinds.items()) if r.examples]
    if fps:
        lines.append("")
        lines.append("false positives (examples):")
        for kind, r in fps:
            for e in r.examples:
                score = "" if e.get("score") is None else f" score={e['score']:.3f}"
                other = f" [labelled as {', '.join(e['labelled_as'])}]" if e.get("labelled_as") else ""
                lines.append(f"  {kind} {json.dumps(e['subject'], ensure_ascii=False)}{score}{other} {e.get('summary', '')}".rstrip())
    missed = [(k, r) for k, r in sorted(ev.kinds.items()) if r.missed]
    if missed:
        lines.append("")
        lines.append("missed labels (examples):")
        for kind, r in missed:
            for m in r.missed:
                lines.append(f"  {kind} {json.dumps(m['subject'], ensure_ascii=False)} {m.get('note', '')}".rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------- running


def detector_factory(model_dir: Path | None = None) -> Any:
    """Every registered detector, the anomaly detector persisting its models in ``model_dir``."""
    from detectors import anomaly, registry

    def make() -> list[Any]:
        out: list[Any] = []
        for module in registry.MODULES:
            out.extend(anomaly.detectors(model_dir=model_dir) if module is anomaly else module.detectors())
        return out

    return make


def run_evaluation(
    seed: int,
    classes: int,
    fraud_rate: float = 0.1,
    region: str = "320500",
    *,
    work_dir: Path | None = None,
    batch_size: int = 1_000,
) -> Evaluation:
    """Simulate, ingest into a fresh SQLite store, detect, and evaluate."""
    import time

    from ops.runtime import open_ledger
    from ops.settings import Settings
    from ops.simulate import simulate
    from streams.intake import ingest_paths

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="skillfund-eval-", dir=work_dir) as tmp:
        t0 = time.perf_counter()
        sim = simulate(seed=seed, classes=classes, fraud_rate=fraud_rate, region=region)
        timings["simulate_s"] = time.perf_counter() - t0
        path = Path(tmp) / "records.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for rec in sim.records:
                fh.write(rec if isinstance(rec, str) else json.dumps(rec, ensure_ascii=False))
                fh.write("\n")
        settings = Settings(data_dir=Path(tmp) / "data", database_url=None, database_schema=None)
        ledger = open_ledger(settings)
        t0 = time.perf_counter()
        summary = ingest_paths(ledger, [path], batch_size=batch_size)
        timings["ingest_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        alerts, scores, method, warmed = _detect(settings, ledger)
        timings["detect_s"] = time.perf_counter() - t0
    labels = [dict(lb) for lb in sim.labels]
    own = anomaly_truth(labels, ANOMALY_KIND)
    truth = own or anomaly_truth(labels)
    anyclass = anomaly_truth(labels)
    kinds = evaluate(alerts, labels, anomaly=True)
    anomaly_alerts = [a for a in alerts if a["kind"] == ANOMALY_KIND]
    on_fraud = (
        sum(1 for a in anomaly_alerts if a["subject"].get("class_id") in anyclass) / len(anomaly_alerts)
        if anomaly_alerts else None
    )
    return Evaluation(
        seed=seed,
        classes=classes,
        fraud_rate=fraud_rate,
        region=region,
        records=len(sim.records),
        accepted=summary.accepted,
        rejected=summary.rejected_total,
        labels=len(labels),
        alerts=len(alerts),
        kinds=kinds,
        anomaly_auc=roc_auc(scores, truth),
        anomaly_auc_any=roc_auc(scores, anyclass),
        anomaly_scored=len(scores),
        anomaly_positives=len(truth & set(scores)),
        anomaly_positives_any=len(anyclass & set(scores)),
        anomaly_method=method,
        anomaly_alerts_on_fraud=on_fraud,
        anomaly_warmed_up=warmed,
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def _detect(settings: Any, ledger: Any) -> tuple[list[dict[str, Any]], dict[str, float], str, bool]:
    """Run every detector over the store: the stored alerts, every complete class's
    anomaly score, the anomaly method, and whether its warm-up was reached."""
    from detectors.alerts import Alerts
    from detectors.anomaly import AnomalyDetector
    from detectors.runner import DetectionSession

    alerts = Alerts(env=settings.eventsourcing_env(Alerts.name))
    session = DetectionSession(ledger.recorder, alerts, detector_factory(settings.data_dir / "models"))
    session.catch_up()
    anomaly = next((d for d in session.engine.detectors if isinstance(d, AnomalyDetector)), None)
    warmed = anomaly is not None and anomaly.model is not None
    if anomaly is not None and anomaly.model is None:
        # fewer complete classes than the warm-up needs (a tiny run): score them
        # anyway for the ROC-AUC; no alert is stored for them
        anomaly.flush(complete_open=False)
    scores = dict(anomaly.scores) if anomaly is not None else {}
    method = anomaly.method if anomaly is not None else "-"
    return [as_alert(a) for a in alerts.list()], scores, method, warmed


# ----------------------------------------------------------------- CLI


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_command(
        seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
        classes: Annotated[int, typer.Option(help="Classes in the simulated year.")] = 200,
        fraud_rate: Annotated[float, typer.Option(help="Share of classes/claims with an injected fraud.")] = 0.1,
        region: Annotated[str, typer.Option(help="Pack region of the simulation.")] = "320500",
        format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    ) -> None:
        """Simulate, ingest, detect; print recall and precision per alert kind against the labels."""
        if format not in ("table", "json"):
            typer.echo("skillfund evaluate: --format is table or json", err=True)
            raise typer.Exit(2)
        if not 0 <= fraud_rate <= 1:
            typer.echo("skillfund evaluate: --fraud-rate is between 0 and 1", err=True)
            raise typer.Exit(2)
        if classes < 1:
            typer.echo("skillfund evaluate: --classes must be at least 1", err=True)
            raise typer.Exit(2)
        ev = run_evaluation(seed, classes, fraud_rate, region)
        if format == "json":
            typer.echo(json.dumps(ev.to_dict(), ensure_ascii=False, indent=2))
        else:
            typer.echo(format_table(ev))
