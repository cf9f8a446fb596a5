"""Runtime settings for skillfund, read from ``SKILLFUND_*`` environment variables.

Storage is chosen here, by configuration, never by code paths in the domain:

* ``SKILLFUND_DATABASE_URL`` unset  -> SQLite file ``<data_dir>/skillfund.sqlite``
* ``SKILLFUND_DATABASE_URL=postgresql://user[:password]@host[:port]/dbname``
  -> PostgreSQL (optionally in ``SKILLFUND_DATABASE_SCHEMA``, used by tests).

:meth:`Settings.eventsourcing_env` turns this into the environment an
eventsourcing 9.5 ``Application`` reads. eventsourcing looks every key up first
as ``<APP NAME UPPERCASED>_<KEY>`` and then as ``<KEY>``
(``eventsourcing.utils.Environment.create_keys``), so each application gets its
own prefix (``LEDGER_PERSISTENCE_MODULE`` …) and two applications never share
one table by accident. Always pass the result as ``env=`` to the application:
with ``PERSISTENCE_MODULE`` unset eventsourcing silently keeps everything in
memory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "PostgresParts", "parse_postgres_url"]

BATCH_SIZE_MIN = 1
BATCH_SIZE_MAX = 10_000
SQLITE_FILENAME = "skillfund.sqlite"
SQLITE_LOCK_TIMEOUT_S = 10
POSTGRES_CONNECT_TIMEOUT_S = 5
POSTGRES_POOL_SIZE = 5
_POSTGRES_SCHEMES = ("postgresql", "postgres")
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")


class PostgresParts:
    """The pieces of a ``postgresql://`` URL that eventsourcing needs."""

    __slots__ = ("user", "password", "host", "port", "dbname")

    def __init__(self, user: str, password: str, host: str, port: int, dbname: str):
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.dbname = dbname

    def safe_url(self) -> str:
        """The URL with the password (if any) replaced by ``***``."""
        cred = self.user + (":***" if self.password else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{cred}@{host}:{self.port}/{self.dbname}"

    def __repr__(self) -> str:  # never show the password
        return f"PostgresParts({self.safe_url()!r})"


def parse_postgres_url(url: str) -> PostgresParts:
    """Split ``postgresql://user[:password]@host[:port]/dbname``.

    User and password are percent-decoded. The host keeps its case (it may be a
    percent-encoded socket directory such as ``%2Fvar%2Frun%2Fpostgresql``).
    Raises ``ValueError`` (without echoing a password) when the URL is unusable.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise ValueError(
            f"database URL must start with postgresql:// (got scheme {parts.scheme!r})"
        )
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    user_raw, sep, password_raw = userinfo.partition(":")
    user = unquote(user_raw)
    password = unquote(password_raw) if sep else ""
    if hostport.startswith("["):  # [ipv6]:port
        host_raw, _, rest = hostport[1:].partition("]")
        port_raw = rest[1:] if rest.startswith(":") else ""
    else:
        host_raw, _, port_raw = hostport.partition(":")
    host = unquote(host_raw)
    if not host:
        raise ValueError("database URL has no host (postgresql://user@host:port/dbname)")
    if not user:
        raise ValueError("database URL has no user (postgresql://user@host:port/dbname)")
    try:
        port = int(port_raw) if port_raw else 5432
    except ValueError:
        raise ValueError(f"database URL has an invalid port: {port_raw!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"database URL port out of range: {port}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise ValueError(
            "database URL must name exactly one database (postgresql://user@host:port/dbname)"
        )
    return PostgresParts(user=user, password=password, host=host, port=port, dbname=dbname)


class Settings(BaseSettings):
    """skillfund settings; every field can be set as ``SKILLFUND_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="SKILLFUND_",
        extra="ignore",
        validate_default=True,
        hide_input_in_errors=True,  # a bad URL must not echo its password
    )

    data_dir: Path = Path("skillfund-data")
    database_url: str | None = None
    database_schema: str | None = None
    batch_size: int = 1000
    log_level: str = "INFO"

    # -- validation -------------------------------------------------------

    @field_validator("database_url", "database_schema", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_postgres_url(value)  # raises ValueError with a safe message
            value = value.strip()
        return value

    @field_validator("database_schema")
    @classmethod
    def _check_schema(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not (value.replace("_", "a").isalnum() and value.isascii()) or value[0].isdigit():
            raise ValueError(
                f"database_schema must be a plain SQL identifier (letters, digits, _): {value!r}"
            )
        return value

    @field_validator("batch_size")
    @classmethod
    def _check_batch_size(cls, value: int) -> int:
        if not BATCH_SIZE_MIN <= value <= BATCH_SIZE_MAX:
            raise ValueError(
                f"batch_size must be between {BATCH_SIZE_MIN} and {BATCH_SIZE_MAX}, got {value}"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(_LOG_LEVELS)}, got {value!r}")
        return level

    # -- derived ----------------------------------------------------------

    @property
    def store_kind(self) -> Literal["sqlite", "postgres"]:
        return "postgres" if self.database_url else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / SQLITE_FILENAME

    def sqlite_path_for(self, app_prefix: str) -> Path:
        """One SQLite file per application: eventsourcing's SQLite recorder
        always names its table ``stored_events``, so two applications in one
        file would share it. The ledger keeps ``skillfund.sqlite``."""
        p = app_prefix.strip().rstrip("_").upper()
        return self.sqlite_path if p == "LEDGER" else self.data_dir / f"{p.lower()}.sqlite"

    @property
    def postgres(self) -> PostgresParts | None:
        return parse_postgres_url(self.database_url) if self.database_url else None

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)

    def eventsourcing_env(self, prefix: str) -> dict[str, str]:
        """The eventsourcing 9.5 environment for an Application named ``prefix``.

        ``prefix`` is the application's name as eventsourcing upper-cases it
        (``Ledger`` -> ``LEDGER``). Pass the result as ``env=`` when constructing
        the application. For SQLite the data directory is created.
        """
        p = prefix.strip().rstrip("_").upper()
        if not p or not p.replace("_", "A").isalnum():
            raise ValueError(f"invalid eventsourcing env prefix: {prefix!r}")
        if self.store_kind == "sqlite":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                f"{p}_PERSISTENCE_MODULE": "eventsourcing.sqlite",
                f"{p}_SQLITE_DBNAME": str(self.sqlite_path_for(p)),
                f"{p}_SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
            }
        pg = self.postgres
        if pg is None:
            raise RuntimeError("postgres store without a database URL")
        env = {
            f"{p}_PERSISTENCE_MODULE": "eventsourcing.postgres",
            f"{p}_POSTGRES_DBNAME": pg.dbname,
            f"{p}_POSTGRES_HOST": pg.host,
            f"{p}_POSTGRES_PORT": str(pg.port),
            f"{p}_POSTGRES_USER": pg.user,
            f"{p}_POSTGRES_PASSWORD": pg.password,
            f"{p}_POSTGRES_CONNECT_TIMEOUT": str(POSTGRES_CONNECT_TIMEOUT_S),
            f"{p}_POSTGRES_POOL_SIZE": str(POSTGRES_POOL_SIZE),
        }
        if self.database_schema:
            env[f"{p}_POSTGRES_SCHEMA"] = self.database_schema
        return env

    def describe(self) -> str:
        """One line for logs. Never contains the database password."""
        if self.store_kind == "postgres":
            pg = self.postgres
            if pg is None:
                raise RuntimeError("postgres store without a database URL")
            store = f"store=postgres url={pg.safe_url()}"
            if self.database_schema:
                store += f" schema={self.database_schema}"
        else:
            store = f"store=sqlite path={self.sqlite_path}"
        return f"{store} batch_size={self.batch_size} log_level={self.log_level}"

    def __repr_args__(self):  # keep passwords out of repr() and tracebacks
        for name, value in super().__repr_args__():
            if name == "database_url" and value:
                value = parse_postgres_url(value).safe_url()
            yield name, value
