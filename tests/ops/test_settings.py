"""ops.settings: SKILLFUND_* settings and the eventsourcing environment they make."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from pydantic import ValidationError

from ops.settings import Settings, parse_postgres_url


# ---------------------------------------------------------------- fields & env


def test_defaults() -> None:
    s = Settings()
    assert s.data_dir == Path("skillfund-data")
    assert s.database_url is None
    assert s.database_schema is None
    assert s.batch_size == 1000
    assert s.log_level == "INFO"
    assert s.store_kind == "sqlite"
    assert s.sqlite_path == Path("skillfund-data") / "skillfund.sqlite"


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SKILLFUND_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("SKILLFUND_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/skillfund")
    monkeypatch.setenv("SKILLFUND_DATABASE_SCHEMA", "books")
    monkeypatch.setenv("SKILLFUND_BATCH_SIZE", "250")
    monkeypatch.setenv("SKILLFUND_LOG_LEVEL", "debug")
    monkeypatch.setenv("DATABASE_URL", "postgresql://other@elsewhere/x")  # unprefixed: ignored
    s = Settings()
    assert s.data_dir == tmp_path / "d"
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/skillfund"
    assert s.database_schema == "books"
    assert s.batch_size == 250
    assert s.log_level == "DEBUG"
    assert s.store_kind == "postgres"


def test_blank_database_url_means_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLFUND_DATABASE_URL", "  ")
    assert Settings().store_kind == "sqlite"


@pytest.mark.parametrize("value", [1, 10_000, 1000])
def test_batch_size_in_bounds(value: int) -> None:
    assert Settings(batch_size=value).batch_size == value


@pytest.mark.parametrize("value", [0, -5, 10_001, 1_000_000])
def test_batch_size_out_of_bounds(value: int) -> None:
    with pytest.raises(ValidationError, match="batch_size must be between 1 and 10000"):
        Settings(batch_size=value)


def test_batch_size_from_env_must_be_an_integer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLFUND_BATCH_SIZE", "lots")
    with pytest.raises(ValidationError):
        Settings()


def test_log_level_is_checked() -> None:
    assert Settings(log_level="warning").log_level == "WARNING"
    assert Settings(log_level="warning").log_level_number == 30
    with pytest.raises(ValidationError, match="log_level"):
        Settings(log_level="LOUD")


@pytest.mark.parametrize("schema", ["public; DROP TABLE x", "1abc", "a-b", "模式"])
def test_schema_must_be_an_identifier(schema: str) -> None:
    with pytest.raises(ValidationError, match="database_schema"):
        Settings(database_schema=schema)


# ---------------------------------------------------------------- URL parsing


def test_parse_postgres_url_full() -> None:
    pg = parse_postgres_url("postgresql://fin%40ance:p%40ss%3Aw0rd@db.example:6543/skill_fund")
    assert (pg.user, pg.password, pg.host, pg.port, pg.dbname) == (
        "fin@ance",
        "p@ss:w0rd",
        "db.example",
        6543,
        "skill_fund",
    )
    assert "p@ss" not in repr(pg)


def test_parse_postgres_url_defaults_and_forms() -> None:
    pg = parse_postgres_url("postgres://postgres@127.0.0.1/test")
    assert (pg.user, pg.password, pg.host, pg.port, pg.dbname) == ("postgres", "", "127.0.0.1", 5432, "test")
    v6 = parse_postgres_url("postgresql://u@[::1]:5433/db")
    assert (v6.host, v6.port) == ("::1", 5433)
    sock = parse_postgres_url("postgresql://u@%2Fvar%2Frun%2Fpostgresql/db")
    assert sock.host == "/var/run/postgresql"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "postgresql://"),
        ("postgresql://u@h:5432/", "exactly one database"),
        ("postgresql://u@h:5432/a/b", "exactly one database"),
        ("postgresql://u@:5432/db", "no host"),
        ("postgresql://h:5432/db", "no user"),
        ("postgresql://u@h:port/db", "invalid port"),
        ("postgresql://u@h:70000/db", "out of range"),
    ],
)
def test_bad_database_urls(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(database_url=url)


def test_validation_error_does_not_echo_password() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(database_url="postgresql://u:s3cr3t-pw@h:5432/")
    assert "s3cr3t-pw" not in str(info.value)


# ---------------------------------------------------------------- eventsourcing env


def test_eventsourcing_env_sqlite(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    s = Settings(data_dir=data_dir)
    env = s.eventsourcing_env("LEDGER")
    assert env == {
        "LEDGER_PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "LEDGER_SQLITE_DBNAME": str(data_dir / "skillfund.sqlite"),
        "LEDGER_SQLITE_LOCK_TIMEOUT": "10",
    }
    assert data_dir.is_dir(), "data_dir is created for SQLite"
    assert s.sqlite_path == data_dir / "skillfund.sqlite"


def test_eventsourcing_env_postgres() -> None:
    s = Settings(
        database_url="postgresql://fin:p%40ss@db.internal:6543/skillfund",
        database_schema="sf_books",
    )
    assert s.eventsourcing_env("Projections") == {
        "PROJECTIONS_PERSISTENCE_MODULE": "eventsourcing.postgres",
        "PROJECTIONS_POSTGRES_DBNAME": "skillfund",
        "PROJECTIONS_POSTGRES_HOST": "db.internal",
        "PROJECTIONS_POSTGRES_PORT": "6543",
        "PROJECTIONS_POSTGRES_USER": "fin",
        "PROJECTIONS_POSTGRES_PASSWORD": "p@ss",
        "PROJECTIONS_POSTGRES_SCHEMA": "sf_books",
        "PROJECTIONS_POSTGRES_CONNECT_TIMEOUT": "5",
        "PROJECTIONS_POSTGRES_POOL_SIZE": "5",
    }


def test_eventsourcing_env_postgres_without_password_or_schema() -> None:
    env = Settings(database_url="postgresql://postgres@127.0.0.1:5432/skillfund").eventsourcing_env("LEDGER")
    assert env["LEDGER_POSTGRES_PASSWORD"] == ""  # eventsourcing requires the key
    assert env["LEDGER_POSTGRES_PORT"] == "5432"
    assert "LEDGER_POSTGRES_SCHEMA" not in env


@pytest.mark.parametrize("prefix", ["", "  ", "LED GER", "a-b"])
def test_eventsourcing_env_rejects_bad_prefix(prefix: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="prefix"):
        Settings(data_dir=tmp_path).eventsourcing_env(prefix)


# ---------------------------------------------------------------- logs never leak


def test_describe_and_repr_never_show_password() -> None:
    s = Settings(database_url="postgresql://fin:TopSecret99@db:5432/skillfund", database_schema="s1")
    text = s.describe()
    assert "TopSecret99" not in text
    assert text.startswith("store=postgres url=postgresql://fin:***@db:5432/skillfund schema=s1")
    assert "batch_size=1000" in text and "log_level=INFO" in text
    assert "TopSecret99" not in repr(s)
    assert "TopSecret99" not in str(s)


def test_describe_sqlite(tmp_path: Path) -> None:
    text = Settings(data_dir=tmp_path).describe()
    assert text.startswith(f"store=sqlite path={tmp_path / 'skillfund.sqlite'}")


# ---------------------------------------------------------------- real round trip


class Trainee(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.hours = 0

    @event("HoursLogged")
    def log_hours(self, hours: int) -> None:
        self.hours += hours


class SettingsRoundTrip(Application):
    """Its eventsourcing name is the class name, so its env prefix is SETTINGSROUNDTRIP."""


def test_round_trip_through_a_real_store(store_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # An unprefixed setting in the process environment must not win over ours.
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.popo")
    env = store_env.eventsourcing_env(SettingsRoundTrip.name)
    assert set(env) >= {"SETTINGSROUNDTRIP_PERSISTENCE_MODULE"}

    app = SettingsRoundTrip(env=env)
    try:
        trainee = Trainee("张三")
        trainee.log_hours(8)
        app.save(trainee)
    finally:
        app.close()

    # A second, independent application instance reads it back from the store.
    again = SettingsRoundTrip(env=env)
    try:
        got = again.repository.get(trainee.id)
        assert (got.name, got.hours, got.version) == ("张三", 8, 2)
        assert again.recorder.max_notification_id() == 2
    finally:
        again.close()

    if store_env.store_kind == "sqlite":
        # one file per application: eventsourcing's SQLite table name is fixed
        assert store_env.sqlite_path_for(SettingsRoundTrip.name).is_file()
        assert store_env.sqlite_path_for("LEDGER") == store_env.sqlite_path
    else:
        import psycopg

        with psycopg.connect(store_env.database_url, connect_timeout=3) as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (store_env.database_schema,),
                )
            }
        assert tables, f"no tables were created in schema {store_env.database_schema}"
