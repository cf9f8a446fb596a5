"""The engine, the registry and the runner: exactly-once detection over a real ledger."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from scenario import Scenario, examples, shift, submit_all, ts

from detectors import classes
from detectors.alerts import Alerts
from detectors.base import AlertDraft, Bounded, ContentMemo, merge_drafts
from detectors.engine import DetectionEngine, DetectorError
from detectors.registry import all_detectors, all_kinds
from detectors.runner import DetectionSession, detect
from ledger.application import Ledger
from ledger.policy import ALERT_KINDS
from ops.settings import Settings
from projections import feed
from projections.feed import Accepted


def d(kind: str = "k", cls: str = "c1", sev: str = "low", ev: Any = 1, at: str = "2024-01-01T00:00:00+08:00",
      pos: int = 1) -> AlertDraft:
    return AlertDraft(kind=kind, subject={"class_id": cls}, severity=sev, evidence=[{"n": ev}], policy=["p"],
                      raised_at=at, position=pos, detector="fake/1")


class Fake:
    def __init__(self, name: str, out: list[AlertDraft] | None = None, fail_at: int | None = None) -> None:
        self.name, self.version, self.kinds = name, "1", ("k",)
        self.out = out or []
        self.fail_at = fail_at
        self.seen: list[int] = []

    def observe(self, item: Any) -> list[AlertDraft]:
        self.seen.append(item.position)
        if item.position == self.fail_at:
            raise ZeroDivisionError("bug")
        return list(self.out)


ITEM = Accepted(position=5, type="x", id="x", record={}, pack=None)


# ------------------------------------------------------------------ engine & base


def test_engine_runs_all_in_order_and_dedupes_by_key() -> None:
    a = Fake("a", [d(ev=1), d(cls="c2")])
    b = Fake("b", [d(ev=2)])
    got = DetectionEngine([a, b]).observe(ITEM)
    assert [(x.subject["class_id"], x.evidence) for x in got] == [("c1", [{"n": 2}]), ("c2", [{"n": 1}])]
    assert a.seen == b.seen == [5]


def test_engine_faulty_detector_strict_or_counted() -> None:
    with pytest.raises(DetectorError, match="a/1 failed at feed position 5"):
        DetectionEngine([Fake("a", fail_at=5)]).observe(ITEM)
    eng = DetectionEngine([Fake("a", fail_at=5), Fake("b", [d()])], strict=False)
    assert len(eng.observe(ITEM)) == 1 and eng.errors == {"a/1": 1}


def test_engine_refuses_a_detector_twice() -> None:
    with pytest.raises(ValueError):
        DetectionEngine([Fake("a"), Fake("a")])


def test_merge_keeps_first_time_and_last_content() -> None:
    (m,) = merge_drafts([d(ev=1, at="2024-01-01T00:00:00+08:00", pos=1), d(ev=2, at="2024-01-02T00:00:00+08:00", pos=2)])
    assert m.evidence == [{"n": 2}] and m.raised_at == "2024-01-01T00:00:00+08:00" and m.position == 1


def test_bounded_and_memo() -> None:
    b = Bounded(2)
    b.setdefault("a", list).append(1)
    b["b"] = 2
    b.touch("a")
    b["c"] = 3
    assert "b" not in b and b["a"] == [1] and len(b) == 2
    memo = ContentMemo(maxsize=10)
    x = d()
    assert memo.changed(x) and not memo.changed(d()) and memo.changed(d(sev="high"))


def test_draft_validation() -> None:
    with pytest.raises(ValueError):
        d(sev="urgent")
    with pytest.raises(ValueError):
        AlertDraft(kind="k", subject={"class_id": ""}, severity="low", evidence=[], policy=["p"], raised_at="t",
                   position=1, detector="x")
    with pytest.raises(ValueError):
        AlertDraft(kind="k", subject={"class_id": "c"}, severity="low", evidence=[], policy=[], raised_at="t",
                   position=1, detector="x")


def test_registry_builds_fresh_detectors_for_every_kind() -> None:
    one, two = all_detectors(), all_detectors()
    assert len(one) == len(two) and all(a is not b for a, b in zip(one, two))
    assert set(all_kinds()) == set(ALERT_KINDS)
    assert any(isinstance(x, classes.ClassDetector) for x in one)


# ------------------------------------------------------------------ runner over a real ledger


def story() -> tuple[Scenario, int]:
    """Class-side frauds spread over time; returns the scenario and where its first half ends."""
    sc = Scenario()
    inst = sc.institution(capacity=6)
    proj = sc.project()
    cls = sc.class_opened(inst, proj, planned_headcount=8, teacher="teacher-zhang")
    people = [sc.enroll(cls) for _ in range(8)]
    short = sc.project(standard_hours=2, class_hour_minutes=60)
    sc.class_opened(inst, short, teacher="teacher-zhang", days=["2024-01-15"], start="10:00", end="12:00",
                    planned_headcount=1)  # double-booked
    for sid in sc.session_ids(cls):
        start = sc.session(cls, sid)["start"]
        for i, t in enumerate(people[:7]):
            sc.attend(cls, sid, t, sign_in=shift(start, minutes=-9, seconds=13 * i), face_score=0.3 if i < 2 else 0.9)
        if sid == "s-01":
            sc.inspect(cls, sid, ts("2024-01-15", "10:00"), present=3)
            half = len(sc.records)
    for t in people:
        sc.complete(cls, t)
    sc.claim(cls, people)
    return sc, half


def ledger_env(tmp_path) -> dict[str, str]:
    return {"LEDGER_PERSISTENCE_MODULE": "eventsourcing.sqlite", "LEDGER_SQLITE_DBNAME": str(tmp_path / "ledger.sqlite")}


def alerts_sqlite(tmp_path, name: str = "alerts.sqlite") -> Alerts:
    return Alerts(env={"ALERTS_PERSISTENCE_MODULE": "eventsourcing.sqlite", "ALERTS_SQLITE_DBNAME": str(tmp_path / name)})


def view(alerts: Alerts) -> list[tuple]:
    return [(a["kind"], a["subject"], a["severity"], a["evidence"], a["policy"], a["raised_at"]) for a in alerts.list()]


@pytest.fixture
def stores(store_env: Settings) -> Iterator[tuple[Ledger, Alerts, Settings]]:
    ledger = Ledger(env=store_env.eventsourcing_env("Ledger"))
    alerts = Alerts(env=store_env.eventsourcing_env(Alerts.name))
    try:
        yield ledger, alerts, store_env
    finally:
        alerts.close()
        ledger.close()


def test_detect_then_again_raises_nothing_new(stores) -> None:
    ledger, alerts, _ = stores
    sc, _ = story()
    submit_all(ledger, sc)
    s1 = detect(ledger.recorder, alerts, classes.detectors)
    want = {"inflated_headcount", "proxy_sign_in", "teacher_double_booked", "venue_over_capacity"}
    assert set(s1.per_kind) == want and s1.new == 4
    assert s1.position == feed.head(ledger.recorder) == alerts.position()
    assert s1.replayed == 0 and s1.items == len(list(feed.read(ledger.recorder)))
    before = alerts.list()
    s2 = detect(ledger.recorder, alerts, classes.detectors)
    assert (s2.new, s2.updated, s2.items) == (0, 0, 0) and s2.replayed == s1.items
    assert alerts.list() == before
    # and every id the evidence names is a record the ledger accepted
    ids = {r["id"] for r in sc.records}
    for a in before:
        for e in a["evidence"]:
            for k in ("attendance_id", "inspection_id", "class_opened_id", "other_class_opened_id"):
                if k in e:
                    assert e[k] in ids


def test_batch_size_does_not_change_the_alerts(tmp_path) -> None:
    ledger = Ledger(env=ledger_env(tmp_path))
    sc, _ = story()
    submit_all(ledger, sc, batch=7)
    one, small = alerts_sqlite(tmp_path, "one.sqlite"), alerts_sqlite(tmp_path, "small.sqlite")
    s_one = detect(ledger.recorder, one, classes.detectors, batch_positions=100_000)
    s_small = detect(ledger.recorder, small, classes.detectors, batch_positions=3)
    assert s_one.batches == 1 and s_small.batches > 10
    assert view(one) == view(small) and len(view(one)) == 4


def test_crash_mid_run_resumes_exactly_once(tmp_path) -> None:
    ledger = Ledger(env=ledger_env(tmp_path))
    sc, _ = story()
    submit_all(ledger, sc)
    head = feed.head(ledger.recorder)
    crash_at = head - 5

    class Crashing(classes.ClassDetector):
        def observe(self, item):  # noqa: ANN001
            if item.position == crash_at:
                raise OSError("power cut")
            return super().observe(item)

    alerts = alerts_sqlite(tmp_path)
    session = DetectionSession(ledger.recorder, alerts, lambda: [Crashing()], batch_positions=4, strict=True)
    with pytest.raises(DetectorError):
        session.catch_up()
    stored = alerts.position()
    assert 0 < stored < crash_at
    partial = {a["alert_id"]: len(a["history"]) for a in alerts.list()}
    assert partial  # some alerts were saved before the crash
    resumed = detect(ledger.recorder, alerts, classes.detectors, batch_positions=4)
    assert resumed.replayed > 0 and resumed.position == head
    clean = alerts_sqlite(tmp_path, "clean.sqlite")
    detect(ledger.recorder, clean, classes.detectors, batch_positions=4)
    assert view(alerts) == view(clean)
    for a in alerts.list():
        assert [h["event"] for h in a["history"]].count("raised") == 1


def test_session_catches_up_incrementally_without_replaying(stores) -> None:
    ledger, alerts, settings = stores
    sc, half = story()
    lines = sc.jsonl().splitlines(keepends=True)
    first, second = Scenario(), Scenario()
    first.records, second.records = sc.records[:half], sc.records[half:]
    session = DetectionSession(ledger.recorder, alerts, classes.detectors)
    submit_all(ledger, first)
    s1 = session.catch_up()
    assert s1.items > 0 and s1.replayed == 0
    assert session.catch_up().items == 0  # nothing new: nothing read
    submit_all(ledger, second)
    s2 = session.catch_up()
    assert s2.replayed == 0 and s2.items == len(lines) - half
    assert s2.position == feed.head(ledger.recorder)
    # the same as one run over everything
    one_shot = other_store(settings)
    try:
        detect(ledger.recorder, one_shot, classes.detectors)
        assert view(one_shot) == view(alerts)
    finally:
        one_shot.close()


class AlertsCopy(Alerts):
    """A second alert store beside the first (PostgreSQL tables alertscopy_*)."""

    name = "AlertsCopy"


def other_store(settings: Settings) -> Alerts:
    if settings.store_kind == "sqlite":
        return alerts_sqlite(settings.data_dir, "one-shot.sqlite")
    env = {k.replace("ALERTS_", "ALERTSCOPY_", 1): v for k, v in settings.eventsourcing_env(Alerts.name).items()}
    return AlertsCopy(env=env)


def test_two_sessions_on_one_store_never_repeat_an_alert(tmp_path) -> None:
    ledger = Ledger(env=ledger_env(tmp_path))
    alerts_a, alerts_b = alerts_sqlite(tmp_path), alerts_sqlite(tmp_path)
    sc, half = story()
    first, second = Scenario(), Scenario()
    first.records, second.records = sc.records[:half], sc.records[half:]
    a = DetectionSession(ledger.recorder, alerts_a, classes.detectors)
    b = DetectionSession(ledger.recorder, alerts_b, classes.detectors)
    submit_all(ledger, first)
    a.catch_up()
    submit_all(ledger, second)
    sb = b.catch_up()  # warms up to A's position, then does the rest
    assert sb.replayed > 0 and sb.items > 0
    sa = a.catch_up()  # behind the store now: replays B's part, writes nothing
    assert (sa.new, sa.updated, sa.items) == (0, 0, 0) and sa.replayed > 0
    clean = alerts_sqlite(tmp_path, "clean.sqlite")
    detect(ledger.recorder, clean, classes.detectors)
    assert view(alerts_a) == view(clean)


def test_the_contract_example_raises_nothing_with_every_detector(tmp_path) -> None:
    ledger = Ledger(env=ledger_env(tmp_path))
    submit_all(ledger, examples())
    alerts = alerts_sqlite(tmp_path)
    stats = detect(ledger.recorder, alerts)
    assert stats.items > 0 and stats.new == 0 and alerts.list() == []
    assert stats.errors == {}


def test_routing_by_record_type_loses_no_alert():
    """The engine routes items by record type; every detector must still see what it reads."""
    import json as _json

    from detectors.engine import DetectionEngine
    from detectors.registry import all_detectors
    from ops.simulate import simulate
    from projections.feed import Accepted
    from ledger.policy import pack_code_for

    sim = simulate(seed=1, classes=40, fraud_rate=0.3)
    items = [
        Accepted(position=i + 1, type=r["type"], id=r["id"], record=_json.loads(_json.dumps(r)),
                 pack=pack_code_for(r["region"]) if "region" in r else "320500")
        for i, r in enumerate(sim.records)
    ]
    routed = DetectionEngine(all_detectors())
    unrouted = DetectionEngine(all_detectors())
    for d in unrouted.detectors:  # the same detectors, each offered every item
        d.record_types = None
    unrouted._all = tuple(unrouted.detectors)
    a = {d.key for it in items for d in routed.observe(it)}
    b = {d.key for it in items for d in unrouted.observe(it)}
    assert a == b
    assert {k.split("|")[0] for k in a} >= {"unreconciled_outflow", "inflated_headcount", "split_payment"}
