"""ops.evaluate: label matching and metrics on hand-made lists; a tiny end-to-end run."""

from __future__ import annotations

import io
import json

import pytest

from ops.evaluate import anomaly_truth, evaluate, match, precision_at, roc_auc


def A(kind: str, score: float | None = None, **subject: str) -> dict:
    return {"kind": kind, "subject": subject, "score": score}


def L(kind: str, **subject: str) -> dict:
    return {"kind": kind, "subject": subject, "note": "injected"}


def test_match_needs_same_kind_and_every_label_field() -> None:
    label = L("repeat_subsidy", trainee_id="T1", claim_id="C1")
    assert match(A("repeat_subsidy", trainee_id="T1", claim_id="C1"), label)
    assert not match(A("repeat_subsidy", trainee_id="T1", claim_id="C2"), label)
    assert not match(A("repeat_subsidy", trainee_id="T1"), label)  # a label field missing
    assert not match(A("excess_claim", trainee_id="T1", claim_id="C1"), label)


def test_alert_with_extra_subject_fields_still_matches() -> None:
    label = L("inflated_headcount", class_id="K1")
    alert = A("inflated_headcount", class_id="K1", session_id="S3")
    assert match(alert, label)
    r = evaluate([alert], [label])["inflated_headcount"]
    assert (r.recall, r.precision, r.false_positives) == (1.0, 1.0, 0)


def test_recall_and_precision_exact_values() -> None:
    labels = [
        L("proxy_sign_in", class_id="K1"),
        L("proxy_sign_in", class_id="K2"),
        L("proxy_sign_in", class_id="K3"),
        L("proxy_sign_in", class_id="K4"),
        L("excess_claim", claim_id="C1"),
    ]
    alerts = [
        A("proxy_sign_in", class_id="K1"),
        A("proxy_sign_in", class_id="K2"),
        A("proxy_sign_in", class_id="K2", session_id="x"),  # a second alert on K2 is still true
        A("proxy_sign_in", class_id="K9"),  # false positive
        A("proxy_sign_in", class_id="K8"),  # false positive
        A("split_payment", payee_id="P1"),  # a kind with no labels
    ]
    res = evaluate(alerts, labels)
    p = res["proxy_sign_in"]
    assert (p.labels, p.alerts, p.labels_found, p.alerts_true, p.false_positives) == (4, 5, 2, 3, 2)
    assert p.recall == 0.5 and p.precision == 0.6
    assert [e["subject"] for e in p.examples] == [{"class_id": "K9"}, {"class_id": "K8"}]
    assert [m["subject"] for m in p.missed] == [{"class_id": "K3"}, {"class_id": "K4"}]
    e = res["excess_claim"]
    assert e.recall == 0.0 and e.precision is None and e.alerts == 0
    s = res["split_payment"]
    assert s.recall is None and s.precision == 0.0 and s.false_positives == 1
    assert "anomalous_class" not in res  # no anomaly alerts, not asked for
    json.dumps({k: r.to_dict() for k, r in res.items()})  # JSON-ready


def test_examples_are_bounded() -> None:
    alerts = [A("venue_over_capacity", class_id=f"K{i}") for i in range(10)]
    r = evaluate(alerts, [], examples=3)["venue_over_capacity"]
    assert r.false_positives == 10 and len(r.examples) == 3


def test_anomalous_class_is_judged_against_classes_named_by_labels() -> None:
    labels = [
        L("shortened_hours", class_id="K1"),
        L("proxy_sign_in", class_id="K2"),
        L("repeat_subsidy", trainee_id="T", claim_id="C"),  # names no class
    ]
    assert anomaly_truth(labels) == {"K1", "K2"}
    alerts = [A("anomalous_class", 0.9, class_id="K1"), A("anomalous_class", 0.7, class_id="K5")]
    r = evaluate(alerts, labels)["anomalous_class"]
    assert (r.labels, r.alerts, r.labels_found, r.recall, r.precision) == (2, 2, 1, 0.5, 0.5)
    # asked for explicitly, the row is there even with no anomaly alerts
    r = evaluate([], labels, anomaly=True)["anomalous_class"]
    assert r.recall == 0.0 and r.precision is None
    # explicit anomalous_class labels count like any other kind
    r = evaluate(alerts, [L("anomalous_class", class_id="K5")])["anomalous_class"]
    assert (r.labels, r.recall, r.precision) == (1, 1.0, 0.5)


def test_roc_auc_by_rank() -> None:
    assert roc_auc({"a": 0.9, "b": 0.8, "c": 0.1, "d": 0.2}, {"a", "b"}) == 1.0
    assert roc_auc({"a": 0.1, "b": 0.2, "c": 0.9}, {"a"}) == 0.0
    assert roc_auc({"a": 0.5, "b": 0.5}, {"a"}) == 0.5  # ties count half
    assert roc_auc({"a": 0.9, "b": 0.1}, set()) is None
    # the same as scikit-learn on a mixed case with ties
    from sklearn.metrics import roc_auc_score

    scores = {"k1": 0.3, "k2": 0.7, "k3": 0.7, "k4": 0.1, "k5": 0.95, "k6": 0.4, "k7": 0.7}
    pos = {"k2", "k5", "k6"}
    ids = sorted(scores)
    want = roc_auc_score([k in pos for k in ids], [scores[k] for k in ids])
    assert roc_auc(scores, pos) == pytest.approx(want)


def test_precision_at_threshold() -> None:
    scores = {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.2}
    assert precision_at(scores, {"a", "c", "d"}, 0.75) == (0.5, 1 / 3)
    assert precision_at(scores, {"a"}, 0.95) == (None, 0.0)


def test_false_positive_on_a_class_labelled_otherwise_says_so() -> None:
    labels = [L("shortened_hours", class_id="K1")]
    r = evaluate([A("anomalous_class", 0.8, class_id="K1"), A("anomalous_class", 0.7, class_id="K2")],
                 labels + [L("anomalous_class", class_id="K3")])["anomalous_class"]
    assert r.false_positives == 2
    assert r.examples[0]["labelled_as"] == ["shortened_hours"] and "labelled_as" not in r.examples[1]


# ------------------------------------------------------------------ end to end


def _app():
    import typer

    from ops.evaluate import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # keeps `evaluate` a subcommand, as in the real CLI
        pass

    register(app)
    return app


def test_evaluate_command_end_to_end_tiny(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    runner = CliRunner()
    res = runner.invoke(_app(), ["evaluate", "--seed", "3", "--classes", "20", "--fraud-rate", "0.2", "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["classes"] == 20 and out["records"] > 0 and out["accepted"] > 0
    assert out["labels"] > 0 and out["alerts"] > 0
    assert "anomalous_class" in out["kinds"]
    for kind, r in out["kinds"].items():
        assert set(r) >= {"labels", "alerts", "recall", "precision", "false_positives", "examples"}
        if r["labels"]:
            assert 0.0 <= r["recall"] <= 1.0
    assert out["anomaly_scored"] >= 10
    assert out["anomaly_warmed_up"] is False  # 20 classes: below the warm-up, scored for the AUC only
    assert out["anomaly_auc"] is None or 0.0 <= out["anomaly_auc"] <= 1.0
    table = runner.invoke(_app(), ["evaluate", "--seed", "3", "--classes", "20", "--fraud-rate", "0.2"])
    assert table.exit_code == 0, table.output
    assert "recall" in table.output and "precision" in table.output and "ROC-AUC" in table.output
    assert "warm-up" in table.output


def test_evaluate_command_refuses_bad_options() -> None:
    from typer.testing import CliRunner

    res = CliRunner().invoke(_app(), ["evaluate", "--format", "xml"])
    assert res.exit_code == 2


# ------------------------------------------------------------------ bench smoke
# bench/ has no test file of its own in this split: its smoke tests live here.
# Not timed: they run the bench functions tiny and check the figures' shape.


def test_bench_common_helpers() -> None:
    from bench import common

    assert common.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert common.percentile([5.0], 99) == 5.0
    s = common.latency_summary([0.001, 0.002, 0.003])
    assert s["n"] == 3 and s["median_ms"] == pytest.approx(2.0) and s["p99_ms"] == pytest.approx(2.98)
    with common.measure("x", 10) as p:
        sum(range(1000))
    assert p.wall_s > 0 and p.rate > 0 and p.peak_rss_mb and p.peak_rss_mb > 0
    with common.measure("traced", 1, trace=True) as q:
        _ = [0] * 10_000
    assert q.traced_peak_mb is not None and q.traced_peak_mb > 0
    assert common.ratio(10.0, 4.0) == 2.5 and common.ratio(None, 1.0) is None
    assert common.isolated(common.peak_rss_mb) > 0  # a fresh interpreter answers


def test_bench_env_sizes(monkeypatch) -> None:
    from bench import common

    monkeypatch.setenv("BENCH_RECORDS", "1_500")
    assert common.bench_records() == 1500
    monkeypatch.setenv("BENCH_RECORDS", "0")
    with pytest.raises(ValueError):
        common.bench_records()


def test_bench_ingest_smoke(monkeypatch) -> None:
    from bench import ingest

    monkeypatch.setenv("BENCH_INPROCESS", "1")
    res = ingest.run(records=1_000, naive=50, postgres=False, out=io.StringIO())
    assert res["input"]["records"] >= 1_000 and res["input"]["by_type"]["attendance"] > res["input"]["records"] / 2
    sq = res["sqlite"]
    assert set(sq) >= {"skillfund", "raw", "naive", "skillfund_vs_raw", "skillfund_vs_naive", "rates"}
    assert sq["skillfund"]["records"] == sq["raw"]["records"] == res["input"]["records"]
    assert sq["naive"]["records"] == 50 and sq["naive"]["extrapolated"]
    assert sq["skillfund"]["extra"]["accepted"] == res["input"]["records"]
    assert sq["skillfund_vs_raw"] > 0 and sq["skillfund_vs_naive"] > 0
    assert res["postgres"] == {"skipped": "skipped by caller"}


def test_bench_ingest_postgres_smoke(pg_url, monkeypatch) -> None:
    from bench import ingest

    monkeypatch.setenv("BENCH_INPROCESS", "1")
    monkeypatch.setenv("BENCH_PG_URL", pg_url)
    res = ingest.run(records=1_000, naive=30, out=io.StringIO())
    pg = res["postgres"]
    assert set(pg) >= {"skillfund", "raw", "naive", "skillfund_vs_raw", "skillfund_vs_naive"}
    assert pg["raw"]["records"] == res["input"]["records"] and pg["naive"]["records"] == 30


def test_bench_detect_smoke(monkeypatch) -> None:
    from bench import detect

    monkeypatch.setenv("BENCH_INPROCESS", "1")
    monkeypatch.setenv("BENCH_LATENCY_RECORDS", "2000")
    out = io.StringIO()
    res = detect.run(records=1_000, out=out)
    tp = res["throughput"]
    assert set(tp) >= {"ingest", "observe", "full", "attendance_rate_observe", "attendance_rate_full", "per_detector_s"}
    assert tp["items"] >= 1_000 and tp["attendance"] > 0 and tp["observe"]["rate"] > 0
    assert "anomaly/1" in tp["per_detector_s"]
    lat = res["latency"]
    assert set(lat) >= {"records", "rate", "alerts", "latency", "latency_by_kind"}
    assert lat["records"] == 2_000 and set(lat["latency"]) == {"n", "median_ms", "p99_ms", "max_ms"}
    assert "attendance" in out.getvalue()
