"""Pooled asynchronous AWS clients (aiobotocore): one client per service (and region, and assumed role)
per worker, created on first use on the running loop, with botocore's standard configuration
(environment, profiles, the credential chain; ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``)
plus ``[aws]`` overrides.

Region: ``[aws] region``, else botocore's chain (``AWS_DEFAULT_REGION``, the profile) or ``AWS_REGION``,
else the region of the state machine that calls (the caller passes it as ``fallback``), else
us-east-1.

A Task's ``Credentials.RoleArn`` is assumed through STS (AssumeRole, the worker's own credentials as
the source) when the service's endpoint is AWS itself: the credentials are kept, and refreshed
before they expire, for every client of that role. When an endpoint is configured (``[aws]
endpoint_url``/``endpoints``, ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>`` or the profile's
``endpoint_url``: a local emulator such as moto or LocalStack), the role is not assumed and the call
is made as configured, since an emulator neither needs nor usually checks it.

Service models are read through one botocore loader for the process (:meth:`AwsClients.service_model`),
so what a binding reads at compile time is what the clients later use, read once.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from typing import Any

from express.integrations import AwsSettings, Integrations

DEFAULT_REGION = "us-east-1"
ROLE_SESSION_NAME = "express-states"

# botocore's model files and parsed service models, shared by every pool of the process: a worker
# (or a test run) that makes many engines reads each model once
_LOADER: Any = None
_MODELS: dict[str, Any] = {}


def _loader() -> Any:
    global _LOADER
    if _LOADER is None:
        from botocore.loaders import create_loader

        _LOADER = create_loader()
    return _LOADER


class AwsClients:
    """``await clients.client("s3")``: the worker's S3 client (made once, even when asked concurrently)."""

    def __init__(self, settings: AwsSettings, assume_roles: bool | None = None) -> None:
        self.settings = settings
        # None: assume a Task's RoleArn only where the endpoint is AWS's (see the module docstring);
        # True: always (an emulator that implements STS, in tests); False: never
        self.assume_roles = assume_roles
        self._session: Any = None
        self._chain_region: str | None = None
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._roles: dict[tuple[str, str], Any] = {}  # (role ARN, region) -> session acting as that role
        self._configured: dict[str, bool] = {}
        self._has_credentials: bool | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ configuration
    def session(self) -> Any:
        """The aiobotocore session (made on first use; nothing of botocore is imported before)."""
        if self._session is None:
            session = self._new_session()
            # botocore reads AWS_DEFAULT_REGION and the profile; the other SDKs (and Lambda) set AWS_REGION
            self._chain_region = session.get_config_variable("region") or os.environ.get("AWS_REGION") or None
            self._session = session
        return self._session

    def _new_session(self) -> Any:
        from aiobotocore.session import get_session

        session = get_session()
        session.register_component("data_loader", _loader())
        if self.settings.profile:
            session.set_config_variable("profile", self.settings.profile)
        return session

    def region(self, fallback: str | None = None) -> str:
        """Where calls go: ``[aws] region``, botocore's chain, ``fallback`` (the caller's state
        machine region), us-east-1."""
        if self.settings.region:
            return self.settings.region
        self.session()
        return self._chain_region or fallback or DEFAULT_REGION

    def endpoint_url(self, service: str) -> str | None:
        """The ``[aws]`` endpoint of ``service`` (botocore's own configuration applies otherwise)."""
        return self.settings.endpoints.get(service) or self.settings.endpoint_url or None

    def custom_endpoint(self, service: str) -> bool:
        """Is an endpoint configured for ``service`` (an emulator, not AWS)?"""
        known = self._configured.get(service)
        if known is None:
            session = self.session()
            env_name = "AWS_ENDPOINT_URL_" + self.service_model(service).service_id.upper().replace(" ", "_")
            known = bool(self.endpoint_url(service) or os.environ.get("AWS_ENDPOINT_URL")
                         or os.environ.get(env_name) or session.get_config_variable("endpoint_url"))
            self._configured[service] = known
        return known

    async def has_credentials(self) -> bool:
        """Does botocore's credential chain find any (asked once)? Without them, and without an
        endpoint of its own, no AWS account is reachable."""
        if self._has_credentials is None:
            self._has_credentials = await self.session().get_credentials() is not None
        return self._has_credentials

    def available_services(self) -> frozenset[str]:
        """botocore's service names (``s3``, ``stepfunctions``, ``cognito-idp``, ...)."""
        return frozenset(_loader().list_available_services(type_name="service-2"))

    def service_model(self, service: str) -> Any:
        """botocore's :class:`~botocore.model.ServiceModel` of ``service`` (read once; raises
        ``botocore.exceptions.UnknownServiceError`` for a name botocore has no model of)."""
        model = _MODELS.get(service)
        if model is None:
            from botocore.model import ServiceModel

            data = _loader().load_service_model(service, type_name="service-2")
            model = _MODELS[service] = ServiceModel(data, service_name=service)
        return model

    # ------------------------------------------------------------------ clients
    async def client(self, service: str, region: str | None = None, role_arn: str | None = None) -> Any:
        """The pooled client of ``service`` in ``region`` (None: :meth:`region`), acting as
        ``role_arn`` when given and the endpoint is AWS's."""
        region = region or self.region()
        if role_arn and not (self.assume_roles or (self.assume_roles is None and not self.custom_endpoint(service))):
            role_arn = None
        key = (service, region, role_arn or "")
        client = self._clients.get(key)
        if client is not None:
            return client
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                session = self.session() if not role_arn else await self._role_session(role_arn, region)
                client = await self._stack.enter_async_context(self._create(session, service, region))
                self._clients[key] = client
        return client

    def _create(self, session: Any, service: str, region: str) -> Any:
        from aiobotocore.config import AioConfig

        kw: dict[str, Any] = {"region_name": region,
                              # the model files of the service are read in a thread, not on the loop
                              "config": AioConfig(warm_up_loader_caches=True)}
        endpoint = self.endpoint_url(service)
        if endpoint:
            kw["endpoint_url"] = endpoint
        return session.create_client(service, **kw)

    async def _role_session(self, role_arn: str, region: str) -> Any:
        """A session whose credentials are ``role_arn``'s, assumed with the worker's own and renewed
        by botocore before they expire."""
        session = self._roles.get((role_arn, region))
        if session is not None:
            return session
        from aiobotocore.credentials import (
            AioAssumeRoleCredentialFetcher,
            AioCredentialResolver,
            AioDeferredRefreshableCredentials,
        )
        base = self.session()
        source = await base.get_credentials()
        sts = functools.partial(base.create_client, region_name=region, endpoint_url=self.endpoint_url("sts"))
        fetcher = AioAssumeRoleCredentialFetcher(sts, source, role_arn,
                                                 extra_args={"RoleSessionName": ROLE_SESSION_NAME})
        credentials = AioDeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials,
                                                        method="assume-role")
        session = self._new_session()
        session.register_component("credential_provider", AioCredentialResolver([_Assumed(credentials)]))
        self._roles[(role_arn, region)] = session
        return session

    async def aclose(self) -> None:
        self._clients.clear()
        self._roles.clear()
        await self._stack.aclose()


class _Assumed:
    """A credential provider that answers the one role's refreshable credentials."""

    METHOD = "assume-role"
    CANONICAL_NAME = "AssumeRole"

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials

    async def load(self) -> Any:
        return self.credentials


def clients(integrations: Integrations) -> AwsClients:
    """The AWS client pool of these integrations."""
    pool: AwsClients = integrations.pooled("aws", lambda: AwsClients(integrations.aws_settings))
    return pool


def machine_region(frame: Any) -> str | None:
    """The region of the state machine a frame runs (``arn:aws:states:REGION:...``), or None."""
    parts = frame.execution.machine_arn.split(":", 4)
    return (parts[3] or None) if len(parts) > 4 else None
