"""Connection settings of the bus, from the environment (`LINETWIN_MQTT_*`) and overrides.

Built by `load_bus_settings()` when a command starts, never at import time; the password is read
from the environment only (`LINETWIN_MQTT_PASSWORD`), never from a command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ROOT = "linetwin/demo/line1"


class BusSettings(BaseSettings):
    """Where the broker is and how to talk to it."""

    model_config = SettingsConfigDict(env_prefix="LINETWIN_MQTT_", extra="forbid", frozen=True)

    host: str = Field("localhost", description="broker host name")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 is usual with TLS)")
    root: str = Field(DEFAULT_ROOT, description="topic root, ISA-95 style: enterprise/site/area/line")
    client_id: str = Field("", description="MQTT client id (empty: chosen per command)")
    tls: bool = Field(False, description="connect with TLS")
    ca_file: Path | None = Field(None, description="CA bundle for TLS (empty: the system's)")
    username: str | None = Field(None, description="user name, if the broker requires one")
    password: SecretStr | None = Field(None, description="password (from the environment only)")
    keepalive_s: int = Field(30, ge=5, description="MQTT keep-alive interval")
    session_expiry_s: int = Field(
        86_400, ge=0, description="how long the broker keeps a disconnected session's messages (1 day)"
    )


def load_bus_settings(**overrides: Any) -> BusSettings:
    """Settings from the environment, with `overrides` (e.g. from command-line flags; None is ignored)."""
    return BusSettings(**{k: v for k, v in overrides.items() if v is not None})
