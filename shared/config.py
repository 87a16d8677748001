"""Configuration from the environment, validated once at start.

A bad value stops the process with a message that names the variable, instead of
surfacing later as a confusing runtime error. :class:`Settings` holds the platform's
settings only (store, bus, cache, HTTP, logs, tokens); a service reads its own settings
from the same environment (:attr:`Settings.environment`) with the readers below, through
its spec's ``settings`` (docs/architecture.md, "Adding a service").
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlparse

# Embedded mode's port, and distributed mode's base: each service's port below is the base
# plus a fixed offset (``slactl run --distributed --port BASE`` moves them all).
DEFAULT_BASE_PORT = 8080

SERVICES: dict[str, dict[str, object]] = {
    "threshold-registry": {"root": "/threshold-registry/v1", "port": 8081},
    "monitoring": {"root": "/monitoring/v1", "port": 8082},
    "analysis": {"root": "/analysis/v1", "port": 8083},
    "outage-negotiation": {"root": "/outage-negotiation/v1", "port": 8084},
    "notification": {"root": "/notification/v1", "port": 8085},
}

# The in-memory (POPO) store is left out on purpose: it keeps one tracking id per upstream
# only, so a requeued message behind later ones would be taken for a duplicate.
PERSISTENCE_MODULES = ("eventsourcing.sqlite", "eventsourcing.postgres")


class ConfigError(SystemExit):
    """Raised for an invalid setting; exits the process with a readable message."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"configuration error: {variable}: {problem}")


def _within(name: str, value: float, minimum: float, maximum: float | None) -> None:
    if maximum is not None and not minimum <= value <= maximum:
        raise ConfigError(name, f"must be between {minimum} and {maximum}, got {value}")
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")


def whole_number(env: Mapping[str, str], name: str, default: int, minimum: int = 0,
                 maximum: int | None = None) -> int:
    """``name`` as a whole number from ``minimum`` (to ``maximum``); ``default`` when unset."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
    _within(name, value, minimum, maximum)
    return value


def seconds(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0,
            maximum: float | None = None) -> float:
    """``name`` as a number of seconds from ``minimum`` (to ``maximum``); ``default`` when
    unset."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"expected seconds as a number, got {raw!r}") from None
    if value != value:  # NaN passes no bound
        raise ConfigError(name, f"expected seconds as a number, got {raw!r}")
    _within(name, value, minimum, maximum)
    return value


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``name`` as true or false (``1/0``, ``yes/no``, ``on/off`` …)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "y", "on"}:
        return True
    if lowered in {"0", "false", "no", "n", "off"}:
        return False
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name)
    if not raw:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not parsed.hostname:
        raise ConfigError(name, f"expected a URL with scheme {' or '.join(schemes)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    """The platform's settings of a suite process, read from the environment. A
    service's own settings are not here: its spec reads them from :attr:`environment`."""

    data_dir: Path
    bus_url: str | None
    redis_url: str | None
    persistence_module: str
    postgres: dict[str, str] = field(default_factory=dict)
    secret_key: str = ""
    secret_generated: bool = False
    max_content_length: int = 1_048_576
    max_deliveries: int = 5
    prefetch: int = 200
    inbox_group: int = 100
    relay_batch: int = 500
    # The relay's fallback poll (s): it wakes on new events, this only bounds how late a
    # message is when a wake-up is lost (shared/wakeups.py).
    relay_poll_interval: float = 1.0
    # Loops wake on new events (in-process signal; PostgreSQL LISTEN/NOTIFY between
    # processes); false: they only poll, at their fallback intervals.
    wake_on_events: bool = True
    log_level: str = "INFO"
    log_json: bool = True
    token_ttl_days: int = 30
    schema_prefix: str = ""
    bus_prefix: str = ""
    heartbeat_seconds: float = 5.0
    # The environment these settings were read from: each service reads its own settings
    # from it (so a test's or a command's environment reaches every service alike).
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def embedded(self) -> bool:
        return self.bus_url is None

    @property
    def queue_prefix(self) -> str:
        """Deprecated name of :attr:`bus_prefix` (it once prefixed queues only)."""
        return self.bus_prefix

    def store_env(self, service: str) -> dict[str, str]:
        """The eventsourcing library's own variables for one service's store."""
        env: dict[str, str] = {
            "PERSISTENCE_MODULE": self.persistence_module,
            # Per-id tracking: a requeued message arriving behind later ones must still
            # be processed, not taken for a duplicate of a higher id.
            "SINGLE_ROW_TRACKING": "n",
        }
        if self.persistence_module == "eventsourcing.sqlite":
            env["SQLITE_DBNAME"] = str(self.data_dir / f"{service}.sqlite")
            env["SQLITE_LOCK_TIMEOUT"] = "10"
        elif self.persistence_module == "eventsourcing.postgres":
            env.update(self.postgres)
            env["POSTGRES_SCHEMA"] = self.schema_prefix + schema_name(service)
        return env


# The longest path a Unix socket can have (sun_path is 108 bytes on Linux, 104 on BSDs).
_SOCKET_PATH_MAX = 100


def control_socket(env: Mapping[str, str], binds: Sequence[str]) -> str | None:
    """Where a gunicorn master of this suite puts its control socket (``gunicornc``), or
    None for none (``SLA_CONTROL_SOCKET=off``).

    gunicorn's default is one path per user (``$XDG_RUNTIME_DIR/gunicorn.ctl``), and each
    master that starts removes the socket before making its own: suites (and services) on
    one host would take each other's away. Each master gets ``<SLA_DATA_DIR>/run/
    gunicorn-<bind>.ctl`` instead — the data directory tells suites apart, the address
    services — or, when that path is too long for a socket, a short one in the temporary
    directory named after it."""
    configured = (env.get("SLA_CONTROL_SOCKET") or "").strip()
    if configured.lower() in {"off", "none", "false", "0"}:
        return None
    if configured:
        return configured
    data_dir = data_dir_of(env)
    address = "_".join(b.replace("unix:", "").replace("/", "-").replace(":", "-").strip("-")
                       for b in binds) or "default"
    path = data_dir / "run" / f"gunicorn-{address}.ctl"
    if len(str(path)) > _SOCKET_PATH_MAX:
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"sla-gunicorn-{digest}.ctl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def schema_name(service: str) -> str:
    return service.replace("-", "_")


def data_dir_of(env: Mapping[str, str]) -> Path:
    return Path(env.get("SLA_DATA_DIR") or "var").resolve()


def existing_secret(env: Mapping[str, str], data_dir: Path) -> str | None:
    """The suite's signing key if there is one — ``SLA_SECRET_KEY``, else the embedded
    suite's ``<data dir>/secret.key`` — never a new one (a token signed with a key the
    suite does not have would be refused by it)."""
    configured = env.get("SLA_SECRET_KEY")
    if configured:
        if len(configured) < 32:
            raise ConfigError("SLA_SECRET_KEY", "must be at least 32 characters long")
        return configured
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    return None


def _secret(env: Mapping[str, str], data_dir: Path, embedded: bool) -> tuple[str, bool]:
    configured = env.get("SLA_SECRET_KEY")
    if configured:
        return existing_secret(env, data_dir) or configured, False
    if not embedded and not flag(env, "SLA_ALLOW_GENERATED_SECRET", False):
        raise ConfigError(
            "SLA_SECRET_KEY",
            "is required in distributed mode (every process must verify the same tokens)",
        )
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key, True


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raises :class:`ConfigError` naming the variable."""
    env = os.environ if env is None else env
    data_dir = data_dir_of(env)
    bus_url = _url(env, "SLA_BUS_URL", ("amqp", "amqps"))
    redis_url = _url(env, "REDIS_URL", ("redis", "rediss", "unix"))
    module = env.get("PERSISTENCE_MODULE") or "eventsourcing.sqlite"
    if module not in PERSISTENCE_MODULES:
        raise ConfigError("PERSISTENCE_MODULE", f"expected one of {', '.join(PERSISTENCE_MODULES)}")
    postgres: dict[str, str] = {}
    if module == "eventsourcing.postgres":
        postgres = {
            "POSTGRES_DBNAME": env.get("POSTGRES_DBNAME") or "sla",
            "POSTGRES_HOST": env.get("POSTGRES_HOST") or "127.0.0.1",
            "POSTGRES_PORT": str(whole_number(env, "POSTGRES_PORT", 5432, 1)),
            "POSTGRES_USER": env.get("POSTGRES_USER") or "postgres",
            "POSTGRES_PASSWORD": env.get("POSTGRES_PASSWORD") or "",
            # Connections kept open per log and process, and how many more it may open
            # under load (closed again once idle). The library's 5 + 10 per log made one
            # distributed suite of three services hold ~100 idle connections: all that a
            # default PostgreSQL allows.
            "POSTGRES_POOL_SIZE": str(whole_number(env, "POSTGRES_POOL_SIZE", 2, 1)),
            "POSTGRES_MAX_OVERFLOW": str(whole_number(env, "POSTGRES_MAX_OVERFLOW", 8, 0)),
            "POSTGRES_CONNECT_TIMEOUT": str(whole_number(env, "POSTGRES_CONNECT_TIMEOUT", 5, 1)),
        }
    level = (env.get("SLA_LOG_LEVEL") or "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("SLA_LOG_LEVEL", "expected DEBUG, INFO, WARNING or ERROR")
    secret, generated = _secret(env, data_dir, bus_url is None)
    poll = seconds(env, "SLA_RELAY_POLL_INTERVAL", 1.0, 0.001, 60)
    heartbeat = seconds(env, "SLA_HEARTBEAT_SECONDS", 5.0, 0.1, 300)
    return Settings(
        data_dir=data_dir,
        bus_url=bus_url,
        redis_url=redis_url,
        persistence_module=module,
        postgres=postgres,
        secret_key=secret,
        secret_generated=generated,
        max_content_length=whole_number(env, "SLA_MAX_BODY_BYTES", 1_048_576, 1024),
        max_deliveries=whole_number(env, "SLA_MAX_DELIVERIES", 5, 1),
        prefetch=whole_number(env, "SLA_PREFETCH", 200, 1),
        inbox_group=whole_number(env, "SLA_INBOX_GROUP", 100, 1, 1000),
        relay_batch=whole_number(env, "SLA_RELAY_BATCH", 500, 1),
        relay_poll_interval=poll,
        wake_on_events=flag(env, "SLA_WAKE_ON_EVENTS", True),
        log_level=level,
        log_json=flag(env, "SLA_LOG_JSON", True),
        token_ttl_days=whole_number(env, "SLA_TOKEN_TTL_DAYS", 30, 1),
        schema_prefix=_schema_prefix(env),
        bus_prefix=_bus_prefix(env),
        heartbeat_seconds=heartbeat,
        environment=MappingProxyType(dict(env)),
    )


def _bus_prefix(env: Mapping[str, str]) -> str:
    """``SLA_BUS_PREFIX``, or its deprecated alias ``SLA_QUEUE_PREFIX`` (which now
    prefixes exchanges too: a suite that set it for isolation gets the isolation)."""
    prefix = env.get("SLA_BUS_PREFIX") or ""
    legacy = env.get("SLA_QUEUE_PREFIX") or ""
    if prefix and legacy and prefix != legacy:
        raise ConfigError("SLA_QUEUE_PREFIX", "is the deprecated name of SLA_BUS_PREFIX; "
                                              "set only SLA_BUS_PREFIX")
    name = "SLA_BUS_PREFIX" if prefix else "SLA_QUEUE_PREFIX"
    prefix = prefix or legacy
    if prefix and not all(c.isalnum() or c in "-_." for c in prefix):
        raise ConfigError(name, "letters, digits, '-', '_' and '.' only")
    if len(prefix) > 100:
        raise ConfigError(name, "at most 100 characters (broker names are limited to 255)")
    return prefix


def _schema_prefix(env: Mapping[str, str]) -> str:
    prefix = env.get("SLA_SCHEMA_PREFIX") or ""
    if prefix and not prefix.replace("_", "").isalnum():
        raise ConfigError("SLA_SCHEMA_PREFIX", "letters, digits and underscores only")
    return prefix
