"""EventBridge connections for the HTTP Task: how a Task's ``Authentication.ConnectionArn`` (or
``InvocationConfig.ConnectionArn``) authorizes its request.

Each ``[connections.NAME]`` table of express.toml is one frozen :class:`Connection`: an authorization
kind (``API_KEY``, ``BASIC`` or ``OAUTH_CLIENT_CREDENTIALS``, EventBridge's ``AuthorizationType``), its
parameters, and the invocation parameters EventBridge adds to every request (``headers``, ``query``,
``body``: the connection's values win over the Task's). Secret values are read from environment
variables named in the table (``api_key_value_env = "MY_KEY"``), once, when the settings are loaded;
they never appear in a repr, a log line or an error cause.

A Task names a connection by its ARN, ``arn:aws:events:REGION:ACCOUNT:connection/NAME/UUID``; the
lookup (:func:`find`) matches on NAME, so any region, account and id reach the configured connection.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

API_KEY = "API_KEY"
BASIC = "BASIC"
OAUTH_CLIENT_CREDENTIALS = "OAUTH_CLIENT_CREDENTIALS"
AUTHORIZATIONS = (API_KEY, BASIC, OAUTH_CLIENT_CREDENTIALS)
TOKEN_METHODS = ("GET", "POST", "PUT")  # EventBridge's OAuth HttpMethod

# EventBridge's connection ARN: the name is [\.\-_A-Za-z0-9]+ (at most 64), the id any path segment
CONNECTION_ARN = re.compile(
    r"^arn:aws[\w-]*:events:[a-z0-9-]*:\d{12}:connection/(?P<name>[.\-_A-Za-z0-9]{1,64})(?:/(?P<id>[^/]+))?$")
_NAME = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
_ID_NAMESPACE = uuid.UUID("5f0c3a52-7c61-4a55-9f0e-0c7a3c1b2d10")  # stable ids for default ARNs


class ConnectionConfigError(ValueError):
    """A ``[connections.NAME]`` table is wrong: ``key`` (e.g. ``connections.stripe.username``) and why."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def default_arn(name: str, region: str = "us-east-1", account: str = "000000000000") -> str:
    """The ARN a connection gets when its table names none (a stable id made from its name)."""
    return f"arn:aws:events:{region}:{account}:connection/{name}/{uuid.uuid5(_ID_NAMESPACE, name)}"


@dataclass(frozen=True, slots=True)
class Connection:
    """One EventBridge connection (see the module docstring); secrets are kept out of ``repr``."""

    name: str
    authorization: str  # API_KEY | BASIC | OAUTH_CLIENT_CREDENTIALS
    arn: str = ""  # "": default_arn(name)
    api_key_name: str = ""  # API_KEY: the header the key goes in
    api_key_value: str = field(default="", repr=False)
    username: str = ""  # BASIC
    password: str = field(default="", repr=False)
    token_endpoint: str = ""  # OAUTH_CLIENT_CREDENTIALS: where the client credentials are exchanged
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scope: str = ""
    token_method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)  # invocation parameters, added to every request
    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"connection name {self.name!r}: letters, digits, '.', '-' and '_', at most 64")
        if self.authorization not in AUTHORIZATIONS:
            raise ValueError(f"connection {self.name!r}: authorization must be one of "
                             f"{', '.join(AUTHORIZATIONS)}, got {self.authorization!r}")
        if not self.arn:
            object.__setattr__(self, "arn", default_arn(self.name))
        for name in ("headers", "query", "body"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


# [connections.NAME] keys: plain strings, then the secrets (read from the environment variable named)
_PLAIN = ("authorization", "arn", "api_key_name", "username", "token_endpoint", "client_id", "scope",
          "token_method")
_SECRETS = {"api_key_value_env": "api_key_value", "password_env": "password", "client_secret_env": "client_secret"}
_TABLES = ("headers", "query", "body")
_REQUIRED = {
    API_KEY: ("api_key_name", "api_key_value_env"),
    BASIC: ("username", "password_env"),
    OAUTH_CLIENT_CREDENTIALS: ("token_endpoint", "client_id", "client_secret_env"),
}


def env_key(name: str, key: str) -> str:
    """The environment variable overriding ``connections.NAME.key``: EXPRESS_CONNECTIONS_NAME_KEY
    (upper case, '.' and '-' in the name as '_')."""
    return f"EXPRESS_CONNECTIONS_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_{key.upper()}"


def from_table(name: str, table: Any, env: Mapping[str, str]) -> Connection:
    """The connection ``[connections.NAME]`` describes; ConnectionConfigError naming the key otherwise.
    Plain keys may be overridden by ``EXPRESS_CONNECTIONS_<NAME>_<KEY>`` (:func:`env_key`)."""
    where = f"connections.{name}"
    if not isinstance(table, dict):
        raise ConnectionConfigError(where, "expected a table")
    if not _NAME.match(name):
        raise ConnectionConfigError(where, "a connection name is letters, digits, '.', '-' and '_' (at most 64)")
    known = set(_PLAIN) | set(_SECRETS) | set(_TABLES)
    for key in table:
        if key not in known:
            hint = " (secrets are read from the environment: use its _env key)" if f"{key}_env" in _SECRETS else ""
            raise ConnectionConfigError(f"{where}.{key}", f"unknown setting{hint} (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for key in (*_PLAIN, *_SECRETS):
        value = env.get(env_key(name, key), table.get(key))
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConnectionConfigError(f"{where}.{key}", f"expected a string, got {value!r}")
        values[key] = value
    authorization = values.get("authorization", "")
    if authorization not in AUTHORIZATIONS:
        raise ConnectionConfigError(f"{where}.authorization",
                                    f"must be one of {', '.join(AUTHORIZATIONS)}, got {authorization or None!r}")
    for key in _REQUIRED[authorization]:
        if not values.get(key):
            raise ConnectionConfigError(f"{where}.{key}", f"required for authorization {authorization}")
    if values.get("token_method", "POST") not in TOKEN_METHODS:
        raise ConnectionConfigError(f"{where}.token_method", f"must be one of {', '.join(TOKEN_METHODS)}")
    arn = values.get("arn", "")
    if arn:
        m = CONNECTION_ARN.match(arn)
        if m is None or m.group("name") != name:
            raise ConnectionConfigError(f"{where}.arn", "expected arn:aws:events:REGION:ACCOUNT:connection/"
                                                        f"{name}/ID, got {arn!r}")
    kw: dict[str, Any] = {k: v for k, v in values.items() if k in _PLAIN}
    for key, attr in _SECRETS.items():
        if key in values:
            variable = values[key]
            secret = env.get(variable)
            if not secret:  # the variable's name is not a secret; its value is never shown
                raise ConnectionConfigError(f"{where}.{key}", f"the environment variable {variable} is not set")
            kw[attr] = secret
    for key in _TABLES:
        sub = table.get(key, {})
        if not isinstance(sub, dict):
            raise ConnectionConfigError(f"{where}.{key}", "expected a table of strings")
        for k, v in sub.items():
            if not isinstance(v, str):
                raise ConnectionConfigError(f"{where}.{key}.{k}", f"expected a string, got {v!r}")
        kw[key] = sub
    return Connection(name=name, **kw)


def find(connections: Mapping[str, Any], arn: str) -> Connection | None:
    """The connection a Task's ConnectionArn names: a key equal to the ARN or to its NAME, else a
    connection whose ``name`` or ``arn`` matches; None if there is none."""
    found = connections.get(arn)
    if isinstance(found, Connection):
        return found
    m = CONNECTION_ARN.match(arn)
    if m is None:
        return None
    name = m.group("name")
    found = connections.get(name)
    if isinstance(found, Connection):
        return found
    for conn in connections.values():
        if isinstance(conn, Connection) and (conn.name == name or conn.arn == arn):
            return conn
    return None
