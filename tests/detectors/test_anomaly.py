"""anomalous_class: features, peer groups, model, explanation, persistence.

The feed here is hand-built (Accepted items straight into the detector), so
these tests need neither the ledger nor the simulator.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from detectors import anomaly
from detectors.anomaly import AnomalyDetector, AnomalyModel, detectors
from detectors.base import AlertDraft
from detectors.features import FEATURES, PEER_MIN, FeatureBuilder, PeerStats
from projections.feed import Accepted

TZ = timezone(timedelta(hours=8))
SMALL_FOREST = {"n_estimators": 50, "max_samples": 256, "random_state": 0}
OUTLIER_FEATURES = {"face_mean", "face_low_share", "hours_ratio", "signin_spread_min", "device_top_share"}


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


class Feed:
    """Builds a feed of Accepted items: catalogue, then classes one after another."""

    def __init__(self, seed: int = 7, pack: str = "320500") -> None:
        self.rng = random.Random(seed)
        self.pack = pack
        self.items: list[Accepted] = []
        self.projects: dict[tuple[str, int], str] = {}
        self.day = date(2024, 1, 8)
        self.n = 0
        self._add("institution", "inst-1", {
            "institution_id": "INST1", "region": pack, "status": "listed", "star": 4,
            "venues": [{"venue_id": "v1", "capacity": 60, "lat": 31.0, "lon": 120.0, "devices": ["d1", "d2", "d3", "d4"]}],
        }, at=datetime(2024, 1, 2, 9, tzinfo=TZ))

    def _add(self, type_: str, id_: str, fields: dict, at: datetime, pack: str | None = None) -> None:
        rec = {"type": type_, "id": id_, "at": _iso(at), **fields}
        self.items.append(Accepted(position=len(self.items) + 1, type=type_, id=id_, record=rec, pack=pack or self.pack))

    def project(self, occupation: str, level: int) -> str:
        key = (occupation, level)
        if key not in self.projects:
            pid = f"p-{len(self.projects) + 1}"
            self.projects[key] = pid
            self._add("project", f"prj-{pid}", {
                "project_id": pid, "region": self.pack, "occupation_code": occupation, "occupation_name": "x",
                "level": level, "training_kind": "employment_skills", "standard_hours": 16,
                "class_hour_minutes": 45, "subsidy_per_trainee": "1200.00", "shortage": False,
            }, at=datetime(2024, 1, 3, 9, tzinfo=TZ))
        return self.projects[key]

    def klass(self, *, occupation: str = "4-10-01-05", level: int = 5, outlier: bool = False,
              claim: bool = True, trainees: int | None = None) -> str:
        rng = self.rng
        self.n += 1
        cid = f"c-{self.n:04d}"
        pid = self.project(occupation, level)
        start_day = self.day
        n_sessions = 4
        sessions = []
        for s in range(n_sessions):
            d = start_day + timedelta(days=s)
            st = datetime(d.year, d.month, d.day, 9, tzinfo=TZ)
            sessions.append({"session_id": f"{cid}-s{s}", "start": _iso(st), "end": _iso(st + timedelta(hours=3)),
                             "teacher_id": "t1", "mode": "onsite"})
        end_day = start_day + timedelta(days=n_sessions - 1)
        self._add("class_opened", f"open-{cid}", {
            "class_id": cid, "institution_id": "INST1", "project_id": pid, "venue_id": "v1",
            "start_date": start_day.isoformat(), "end_date": end_day.isoformat(), "planned_headcount": 30,
            "sessions": sessions,
        }, at=datetime(start_day.year, start_day.month, start_day.day, 8, tzinfo=TZ) - timedelta(days=5))
        n = trainees or rng.randint(18, 28)
        ids = [f"{cid}-t{i:02d}" for i in range(n)]
        for t in ids:
            self._add("enrollment", f"enr-{t}", {"class_id": cid, "trainee_id": t, "category": "other", "hukou_region": "320505"},
                      at=datetime(start_day.year, start_day.month, start_day.day, 8, tzinfo=TZ) - timedelta(days=2))
        for s in sessions:
            st = datetime.fromisoformat(s["start"])
            en = datetime.fromisoformat(s["end"])
            for k, t in enumerate(ids):
                if not outlier and rng.random() < 0.05:
                    continue
                if outlier:
                    sin = st + timedelta(seconds=2 * k)
                    sout = st + timedelta(minutes=110, seconds=k)
                    face = rng.uniform(0.70, 0.80)
                    dev = "d1"
                else:
                    sin = st - timedelta(minutes=rng.uniform(0, 25))
                    sout = en + timedelta(minutes=rng.uniform(0, 12))
                    face = min(0.99, rng.gauss(0.92, 0.03))
                    dev = rng.choice(["d1", "d2", "d3", "d4"])
                self._add("attendance", f"att-{s['session_id']}-{t}", {
                    "class_id": cid, "session_id": s["session_id"], "trainee_id": t, "sign_in": _iso(sin),
                    "sign_out": _iso(sout), "method": "face", "device_id": dev, "lat": 31.0, "lon": 120.0,
                    "face_score": round(face, 3),
                }, at=sin)
            self._add("inspection", f"insp-{s['session_id']}", {
                "class_id": cid, "session_id": s["session_id"], "inspector_id": "o1",
                "present_count": int(n * (0.5 if outlier else rng.uniform(0.85, 1.0))),
            }, at=st + timedelta(minutes=60))
        done_at = datetime(end_day.year, end_day.month, end_day.day, 16, tzinfo=TZ) + timedelta(days=3)
        for t in ids:
            self._add("completion", f"comp-{t}", {"class_id": cid, "trainee_id": t,
                                                  "passed": True if outlier else rng.random() < 0.85,
                                                  "certificate_kind": "none"}, at=done_at)
        if claim:
            self._add("claim", f"claim-{cid}", {
                "claim_id": f"cl-{cid}", "region": self.pack, "claimant_id": "INST1", "claimant_kind": "institution",
                "subsidy_kind": "training", "class_id": cid, "trainee_ids": ids, "amount": f"{1200 * n}.00",
                "handled_by": "o2",
            }, at=done_at + timedelta(days=4))
        self.day = self.day + timedelta(days=7)
        return cid


def run(items, **kw) -> tuple[AnomalyDetector, list[AlertDraft]]:
    det = AnomalyDetector(**kw)
    drafts: list[AlertDraft] = []
    for it in items:
        drafts.extend(det.observe(it))
    drafts.extend(det.flush())
    return det, drafts


def peer_group_with_outlier(normal: int = 40, seed: int = 7) -> tuple[Feed, str]:
    feed = Feed(seed=seed)
    outlier = None
    for i in range(normal + 1):
        cid = feed.klass(outlier=(i == normal // 2))
        if i == normal // 2:
            outlier = cid
    assert outlier is not None
    return feed, outlier


@pytest.mark.parametrize("method", anomaly.METHODS)
def test_outlier_gets_the_top_score_and_is_explained(method: str) -> None:
    feed, outlier = peer_group_with_outlier()
    det, drafts = run(feed.items, method=method, warmup=20)
    assert len(det.scores) == 41  # every complete class is scored
    ranked = sorted(det.scores, key=lambda c: -det.scores[c])
    assert ranked[0] == outlier, (method, det.scores[outlier], sorted(det.scores.values())[-3:])
    mine = [d for d in drafts if d.subject == {"class_id": outlier}]
    if method == anomaly.DEFAULT_METHOD:
        assert mine, "the outlier is past the default threshold"
    s = det.model.score(next(f for f in det.window if f.class_id == outlier))
    named = {e["feature"] for e in s.explanation()}
    assert len(named & OUTLIER_FEATURES) >= 3, named
    for e in s.explanation():
        assert set(e) == {"feature", "value", "peer_median", "robust_z"}
        assert abs(e["robust_z"]) >= 1.0


def test_default_draft_shape() -> None:
    feed, outlier = peer_group_with_outlier()
    _, drafts = run(feed.items, warmup=20)
    d = next(d for d in drafts if d.subject == {"class_id": outlier})
    assert d.kind == "anomalous_class" and d.score is not None and d.score >= anomaly.ALERT_THRESHOLD
    assert d.severity == anomaly.severity_for(d.score)
    assert d.policy and d.detector == "anomaly/1"
    feats = [e for e in d.evidence if "feature" in e]
    assert feats and {e["feature"] for e in feats} & OUTLIER_FEATURES
    model_item = d.evidence[-1]
    assert model_item["peers"] >= PEER_MIN and "occupation=4-10-01-05" in model_item["peer_group"]
    # the outlier's claim completed it: raised at that record
    claim = next(i for i in feed.items if i.type == "claim" and i.record["class_id"] == outlier)
    assert (d.position, d.raised_at) == (claim.position, claim.record["at"])
    # normal classes stay quiet
    assert all(x.subject["class_id"] == outlier for x in drafts), [x.subject for x in drafts]


def test_same_feed_twice_gives_the_same_scores_and_drafts() -> None:
    feed, _ = peer_group_with_outlier(seed=3)
    a, da = run(feed.items, warmup=20, refit_every=7, method="iforest", params=SMALL_FOREST)
    b, db = run(feed.items, warmup=20, refit_every=7, method="iforest", params=SMALL_FOREST)
    assert a.scores == b.scores
    assert a.model.version == b.model.version
    assert da == db


def test_tiny_peer_group_falls_back_to_level_and_region() -> None:
    feed = Feed(seed=5)
    for _ in range(PEER_MIN + 5):
        feed.klass(occupation="4-10-01-05")
    rare = [feed.klass(occupation="6-01-02-03") for _ in range(2)]
    other_level = [feed.klass(occupation="6-01-02-03", level=3) for _ in range(2)]
    det, _ = run(feed.items, warmup=5)
    peers = PeerStats(det.window)
    by_id = {f.class_id: f for f in det.window}
    common = peers.group_for(by_id["c-0001"])
    assert common.name == "occupation=4-10-01-05 level=5 region=320500"
    for cid in rare:
        g = peers.group_for(by_id[cid])
        assert g.name == "level=5 region=320500" and g.size == PEER_MIN + 7
    for cid in other_level:  # level 3 has 2 classes: region next
        g = peers.group_for(by_id[cid])
        assert g.name == "region=320500"
    # below PEER_MIN in the region too: every class is compared with all classes
    tiny = PeerStats(list(det.window)[:4], peer_min=PEER_MIN)
    assert tiny.group_for(by_id["c-0001"]).name == "all classes"


@pytest.mark.parametrize("method", ["iforest", anomaly.DEFAULT_METHOD])
def test_persisted_model_reloads_with_same_version_and_scores(tmp_path, method: str) -> None:
    feed, outlier = peer_group_with_outlier()
    params = SMALL_FOREST if method == "iforest" else None
    det, _ = run(feed.items, warmup=20, refit_every=10, method=method, params=params, model_dir=tmp_path / "models")
    files = sorted((tmp_path / "models").glob("anomaly-*.npz"))
    assert 1 <= len(files) <= anomaly.MODELS_KEPT
    current = tmp_path / "models" / f"anomaly-{det.model.version[:16]}.npz"
    assert current in files
    loaded = AnomalyModel.load(current)
    assert loaded.version == det.model.version
    for f in det.window:
        assert loaded.score(f).score == det.model.score(f).score
    # a tampered file is refused (version no longer matches its content)
    with np.load(current, allow_pickle=False) as data:
        values, header = data["values"].copy(), str(data["header"])
    values[0, 0] = 0.123
    bad = tmp_path / "bad.npz"
    np.savez(bad, values=values, header=np.array(header))
    with pytest.raises(ValueError, match="does not match"):
        AnomalyModel.load(bad)


def test_compiled_forest_matches_sklearn() -> None:
    feed, _ = peer_group_with_outlier()
    det, _ = run(feed.items, warmup=20, method="iforest")
    model = det.model
    X = np.array([model.peers.z(f)[1] for f in det.window])
    ref = -model._estimator.score_samples(X)
    mine = np.array([model._forest.score(row) for row in X])
    assert np.allclose(ref, mine, rtol=0, atol=1e-12)


def test_class_without_claim_is_scored_after_its_end_date_and_grace() -> None:
    feed = Feed(seed=11)
    cids = [feed.klass(claim=(i != 3)) for i in range(30)]
    det = AnomalyDetector(warmup=5)
    unclaimed = cids[3]
    end = next(i for i in feed.items if i.type == "class_opened" and i.record["class_id"] == unclaimed).record["end_date"]
    due = (date.fromisoformat(end) + timedelta(days=det.builder.grace_days)).isoformat()
    latest = ""
    for it in feed.items:
        det.observe(it)
        latest = max(latest, it.record["at"][:10])
        if latest <= due:
            assert unclaimed not in det.scores
    assert unclaimed in det.scores
    f = next(f for f in det.window if f.class_id == unclaimed)
    assert f.value("cost_per_trainee") is None and f.value("pass_rate") is not None


def test_features_of_a_plain_class() -> None:
    feed = Feed(seed=2)
    cid = feed.klass(trainees=20)
    b = FeatureBuilder()
    out = []
    for it in feed.items:
        out.extend(b.observe(it))
    (f,) = out
    assert f.class_id == cid and f.pack == "320500" and f.level == "5"
    v = f.as_dict()
    assert set(v) == set(FEATURES)
    assert v["cost_per_trainee"] == 1200.0
    assert 0.99 <= v["hours_ratio"] <= 1.0  # 4 × 3 h sessions, 16 × 45 min standard, everyone inside the window
    assert v["verified_share"] == 1.0
    assert 0.0 <= v["device_top_share"] <= 0.15  # busiest of 4 devices, minus the even 0.25
    assert v["face_low_share"] == 0.0
    assert 0.85 <= v["inspection_ratio"] <= 1.1


def test_detectors_factory_gives_fresh_instances() -> None:
    a, b = detectors()[0], detectors()[0]
    assert a is not b and a.kinds == ("anomalous_class",)
    assert a.name == "anomaly" and a.version


def test_version_changes_with_window_and_params() -> None:
    feed, _ = peer_group_with_outlier()
    det, _ = run(feed.items, warmup=20)
    window = list(det.window)
    a = AnomalyModel(window, "robust_z", {"top_k": 3})
    assert a.version == AnomalyModel(window, "robust_z", {"top_k": 3}).version
    assert a.version != AnomalyModel(window[1:], "robust_z", {"top_k": 3}).version
    assert a.version != AnomalyModel(window, "robust_z", {"top_k": 2}).version
    assert a.version != AnomalyModel(window, "iforest", SMALL_FOREST).version


def test_nothing_is_scored_before_the_warmup_unless_flushed() -> None:
    feed = Feed(seed=13)
    for _ in range(8):
        feed.klass()
    det = AnomalyDetector(warmup=40)
    for it in feed.items:
        assert not det.observe(it)
    assert det.model is None and not det.scores and len(det.pending) == 8
    det.flush(complete_open=False)
    assert det.model is not None and len(det.scores) == 8 and not det.pending


def test_model_dir_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(anomaly.MODEL_DIR_ENV, str(tmp_path / "m"))
    (d,) = detectors()
    assert d.model_dir == tmp_path / "m"
    monkeypatch.delenv(anomaly.MODEL_DIR_ENV)
    assert detectors()[0].model_dir is None


def test_non_record_items_and_unknown_classes_are_ignored() -> None:
    from projections.feed import Posted

    det = AnomalyDetector()
    assert not det.observe(Posted(position=1, txn={}))
    stray = Accepted(position=2, type="attendance", id="a", pack="320500", record={
        "type": "attendance", "id": "a", "at": "2024-03-01T09:00:00+08:00", "class_id": "nope", "session_id": "s",
        "trainee_id": "t", "sign_in": "2024-03-01T09:00:00+08:00", "sign_out": "2024-03-01T10:00:00+08:00",
        "method": "face", "device_id": "d", "lat": 31.0, "lon": 120.0, "face_score": 0.9})
    assert not det.observe(stray)
    assert not det.builder.open


def test_a_class_scored_at_the_warmup_is_raised_at_the_record_that_ended_it() -> None:
    feed = Feed(seed=17)
    cids = [feed.klass(outlier=(i == 5)) for i in range(30)]
    det, drafts = run(feed.items, warmup=20)
    d = next(d for d in drafts if d.subject == {"class_id": cids[5]})
    twentieth = next(i for i in feed.items if i.type == "claim" and i.record["class_id"] == cids[19])
    assert (d.position, d.raised_at) == (twentieth.position, twentieth.record["at"])


def test_evidence_names_the_model_that_scored_even_across_a_refit() -> None:
    feed, outlier = peer_group_with_outlier()
    det, drafts = run(feed.items, warmup=20, refit_every=1)  # a refit after every class
    d = next(d for d in drafts if d.subject == {"class_id": outlier})
    named = d.evidence[-1]["model"]
    f = next(f for f in det.window if f.class_id == outlier)
    window = list(det.window)
    scorer = AnomalyModel(window[: window.index(f)])  # the window before the outlier joined it
    assert named == scorer.version[:16] != det.model.version[:16]
    assert scorer.score(f).score == d.score


def test_flush_completes_open_classes_at_the_latest_record() -> None:
    feed = Feed(seed=19)
    for i in range(25):
        feed.klass(claim=(i < 24))
    det = AnomalyDetector(warmup=10)
    for it in feed.items:
        det.observe(it)
    last = feed.items[-1]
    open_ids = list(det.builder.open)
    assert open_ids  # the unclaimed class, not yet past its end date + grace
    det.flush()
    assert not det.builder.open and all(c in det.scores for c in open_ids)
    assert det.builder.last is last
