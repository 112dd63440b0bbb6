"""Connection settings of the bus, from the environment (`LINETWIN_MQTT_*`) and overrides, and how
every settings class is loaded: a mistake ends in one `BridgeError` line naming the variable, its
value and the rule, never a traceback.

Built by `load_bus_settings()` when a command starts, never at import time; the password is read
from the environment only (`LINETWIN_MQTT_PASSWORD`), never from a command line. An empty variable
counts as unset; a variable with the prefix that is not a setting is a mistake (a misspelt name).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar, get_args

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.errors import BridgeError
from bridge.topics import Topics

DEFAULT_ROOT = "linetwin/demo/line1"

S = TypeVar("S", bound=BaseSettings)


def _host(host: str) -> str:
    if ":" in host:  # only an IPv6 address has colons: a port is LINETWIN_MQTT_PORT
        try:
            ipaddress.IPv6Address(host)
            return host
        except ValueError:
            pass
    elif host and not any(c.isspace() or c in "/@?#[]" for c in host):
        return host
    raise ValueError("must be a host name or IP address, without scheme, port or path")


def _root(root: str) -> str:
    Topics(root)  # its ValueError states the rule
    return root


def _ca_bundle(path: Path) -> Path:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except ssl.SSLError as exc:
        raise ValueError(f"must be a PEM file of CA certificates (OpenSSL: {exc.reason or exc})") from None
    except OSError as exc:
        raise ValueError(f"must be a readable PEM file of CA certificates ({exc.strerror})") from None
    return path


class BusSettings(BaseSettings):
    """Where the broker is and how to talk to it."""

    model_config = SettingsConfigDict(
        env_prefix="LINETWIN_MQTT_", extra="forbid", frozen=True, env_ignore_empty=True
    )

    host: Annotated[str, AfterValidator(_host)] = Field("localhost", description="broker host name")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 is usual with TLS)")
    root: Annotated[str, AfterValidator(_root)] = Field(
        DEFAULT_ROOT, description="topic root, ISA-95 style: enterprise/site/area/line"
    )
    client_id: str = Field(
        "",
        max_length=256,
        pattern=r"^[^\x00-\x1f]*$",
        description="client id of `serve` (empty: chosen per command); at most 256 characters, "
        "no control characters",
    )
    tls: bool = Field(False, description="connect with TLS")
    ca_file: Annotated[Path, AfterValidator(_ca_bundle)] | None = Field(
        None, description="CA bundle for TLS (empty: the system's)"
    )
    username: str | None = Field(None, description="user name, if the broker requires one")
    password: SecretStr | None = Field(None, description="password (from the environment only)")
    keepalive_s: int = Field(30, ge=5, le=65_535, description="MQTT keep-alive interval")
    session_expiry_s: int = Field(
        86_400,
        ge=0,
        le=0xFFFF_FFFF,
        description="how long the broker keeps a disconnected session's messages (1 day)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.ca_file is not None and not self.tls:
            raise ValueError(
                "LINETWIN_MQTT_CA_FILE is set but LINETWIN_MQTT_TLS is not true: set LINETWIN_MQTT_TLS=true "
                "to connect with TLS, or unset LINETWIN_MQTT_CA_FILE"
            )
        if self.password is not None and not self.username:
            raise ValueError(
                "LINETWIN_MQTT_PASSWORD is set without LINETWIN_MQTT_USERNAME: set both or neither"
            )
        return self


def load_bus_settings(**overrides: Any) -> BusSettings:
    """Settings from the environment, with `overrides` (e.g. from command-line flags; None is ignored)."""
    return load_settings(BusSettings, overrides)


def load_settings(cls: type[S], overrides: Mapping[str, object]) -> S:
    """`cls` from its environment variables with the non-None `overrides` on top; a mistake raises a
    BridgeError of one line (an override is named as the command-line flag it comes from)."""
    given: dict[str, Any] = {key: value for key, value in overrides.items() if value is not None}
    prefix = str(cls.model_config.get("env_prefix", ""))
    known = {prefix + name.upper() for name in cls.model_fields}
    unknown = sorted(n for n in os.environ if n.upper().startswith(prefix) and n.upper() not in known)
    if unknown:
        raise BridgeError(f"{', '.join(unknown)}: not a setting; the settings are {', '.join(sorted(known))}")
    try:
        return cls(**given)
    except ValidationError as exc:
        problems = [_problem(cls, prefix, error, given) for error in exc.errors()]
        raise BridgeError("; ".join(problems)) from None


_RULES = {
    "bool_parsing": "must be true or false (or 1/0, yes/no, on/off)",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_too_short": "must not be empty",
}
_BOUNDS = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}


def _problem(cls: type[BaseSettings], prefix: str, error: ErrorDetails, given: Mapping[str, object]) -> str:
    """One mistake as `NAME=value: rule [what the setting is]`."""
    field = str(error["loc"][0]) if error["loc"] else ""
    rule = _rule(error)
    if field not in cls.model_fields:
        return f"{field}: {rule}" if field else rule
    info = cls.model_fields[field]
    name = f"--{field.replace('_', '-')}" if field in given else prefix + field.upper()
    hidden = SecretStr in (info.annotation, *get_args(info.annotation))
    shown = repr(error["input"])
    value = "(hidden)" if hidden else shown if len(shown) <= 80 else shown[:80] + "…"
    about = f" [{info.description}]" if info.description else ""
    return f"{name}={value}: {rule}{about}"


def _rule(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    for key, words in _BOUNDS.items():
        if key in ctx:
            return f"must be {words} {ctx[key]}"
    if error["type"] == "value_error":
        return str(ctx.get("error", error["msg"]))
    return _RULES.get(error["type"], error["msg"])
