"""Configuration of ``ordersync run``: a YAML file validated by pydantic, plus keys from the environment.

The only module that reads environment variables. API keys come from ``APCA_API_KEY_ID`` and
``APCA_API_SECRET_KEY`` only — never from the file, never from argv — and are held as SecretStr so a
repr, a log line or an error message cannot show them.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from ordersync.domain.errors import ConfigError

PAPER_URL = "https://paper-api.alpaca.markets"
PAPER_STREAM_URL = "wss://paper-api.alpaca.markets/stream"


MAX_CONFIG_BYTES = 1 << 20  # a config is a few hundred bytes; anything larger is the wrong file


class _Strict(BaseModel):
    # infinities and NaN pass `gt=0` checks but make every interval meaningless
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BrokerSettings(_Strict):
    base_url: str = PAPER_URL
    stream_url: str = PAPER_STREAM_URL
    paper: bool = True
    timeout_s: float = Field(default=10.0, gt=0)
    requests_per_minute: float = Field(default=190.0, gt=0, le=200)


class StoreSettings(_Strict):
    url: str = "sqlite:///ordersync.db"


class EngineSettings(_Strict):
    poll_interval_s: float = Field(default=2.0, gt=0)
    stream_silence_s: float = Field(default=60.0, gt=0)
    reconcile_interval_s: float = Field(default=60.0, gt=0)
    tick_s: float = Field(default=1.0, gt=0)
    release_backoff_base_s: float = Field(default=2.0, gt=0)
    release_backoff_cap_s: float = Field(default=300.0, gt=0)
    unprotected_alert_s: float = Field(default=10.0, gt=0)
    wash_trade_bound_s: float = Field(default=30.0, gt=0)
    unknown_alert_s: float = Field(default=30.0, gt=0)
    drift_alert_runs: int = Field(default=2, ge=1)


class MetricsSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)
    enabled: bool = True


class FleetSettings(_Strict):
    """Many accounts (``ordersync run --worker``): where their keys are, how workers see each other."""

    # one folder per account holding files ``key_id`` and ``secret_key`` (a Docker/Kubernetes secret mount);
    # ORDERSYNC_ACCOUNT_<ID>_KEY_ID / _SECRET_KEY in the environment take precedence
    secrets_dir: str | None = None
    heartbeat_s: float = Field(default=1.0, gt=0)
    worker_ttl_s: float = Field(default=5.0, gt=0)
    # PostgreSQL connections each account's store keeps open between uses (more are opened for a moment
    # when needed and closed on return): a worker holds about this many per account it runs
    store_pool_size: int = Field(default=1, ge=1)
    # each account's lease (store/lease.py): a silent worker's accounts are taken over within about
    # ``lease_ttl_s`` + a standby poll; a longer TTL tolerates a worker's event loop stalling longer (a
    # starved CPU) before its engines stop acting, at the price of a slower failover
    lease_ttl_s: float = Field(default=3.5, gt=0)
    lease_renew_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> FleetSettings:
        # a lease renewed less often than it expires would lapse between renewals
        if self.lease_renew_s >= self.lease_ttl_s:
            raise ValueError(
                f"lease_renew_s ({self.lease_renew_s}) must be below lease_ttl_s ({self.lease_ttl_s})"
            )
        return self


class Settings(_Strict):
    """Everything ``ordersync run`` needs except the keys."""

    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = StoreSettings()
    engine: EngineSettings = EngineSettings()
    metrics: MetricsSettings = MetricsSettings()
    fleet: FleetSettings = FleetSettings()


class Credentials(BaseModel):
    """Alpaca keys, from the environment only."""

    model_config = ConfigDict(frozen=True)

    key_id: SecretStr
    secret_key: SecretStr


def load_settings(path: Path | None) -> Settings:
    """Read and validate a config file (None: all defaults).

    Raises:
        ConfigError: unreadable file, bad YAML, or a field that does not validate (named in the message).
    """
    if path is None:
        return Settings()
    try:
        if not path.is_file():  # a folder, /dev/zero or a pipe would hang or mislead the YAML parser
            raise ConfigError(f"{path}: cannot read: not a regular file")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: cannot read: larger than {MAX_CONFIG_BYTES} bytes")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


def credentials_from_env() -> Credentials:
    """Return the Alpaca keys from APCA_API_KEY_ID / APCA_API_SECRET_KEY.

    Raises:
        ConfigError: when either is missing or empty (the message names the variable, never a value).
    """
    key, secret = os.environ.get("APCA_API_KEY_ID", ""), os.environ.get("APCA_API_SECRET_KEY", "")
    missing = [
        name for name, value in (("APCA_API_KEY_ID", key), ("APCA_API_SECRET_KEY", secret)) if not value
    ]
    if missing:
        raise ConfigError(
            f"set {' and '.join(missing)} in the environment (keys are never read from files or argv)"
        )
    return Credentials(key_id=SecretStr(key), secret_key=SecretStr(secret))


def _account_env(account_id: str) -> str:
    return "ORDERSYNC_ACCOUNT_" + "".join(c if c.isalnum() else "_" for c in account_id.upper())


def account_credentials(account_id: str, secrets_dir: Path | None) -> Credentials:
    """Return one fleet account's Alpaca keys: its environment variables, else its secrets folder.

    ``ORDERSYNC_ACCOUNT_<ID>_KEY_ID`` / ``_SECRET_KEY`` (the id upper-cased, other characters as ``_``), else
    the files ``<secrets_dir>/<id>/key_id`` and ``secret_key``. Keys never live in the catalog in clear.

    Raises:
        ConfigError: neither source has both keys (the message names where it looked, never a value).
    """
    prefix = _account_env(account_id)
    key, secret = os.environ.get(f"{prefix}_KEY_ID", ""), os.environ.get(f"{prefix}_SECRET_KEY", "")
    if key and secret:
        return Credentials(key_id=SecretStr(key), secret_key=SecretStr(secret))
    if secrets_dir is not None:
        folder = secrets_dir / account_id
        try:
            key = (folder / "key_id").read_text(encoding="utf-8").strip()
            secret = (folder / "secret_key").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            key = secret = ""
        if key and secret:
            return Credentials(key_id=SecretStr(key), secret_key=SecretStr(secret))
    where = f"{prefix}_KEY_ID/_SECRET_KEY" + (
        f" or {secrets_dir / account_id}/key_id,secret_key" if secrets_dir else ""
    )
    raise ConfigError(f"no keys for account {account_id!r}: set {where}")


def secret_values(secrets_dir: Path | None = None) -> list[str]:
    """Return the secret values in the environment and a fleet's secrets folder, for log redaction."""
    names = ["APCA_API_KEY_ID", "APCA_API_SECRET_KEY"]
    names += [k for k in os.environ if k.startswith("ORDERSYNC_ACCOUNT_")]
    values = [v for k in names if len(v := os.environ.get(k, "")) >= 4]
    if secrets_dir is not None and secrets_dir.is_dir():
        for path in sorted(secrets_dir.glob("*/*")):
            try:
                value = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                continue
            if len(value) >= 4:
                values.append(value)
    return values
