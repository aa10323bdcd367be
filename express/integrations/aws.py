"""Pooled asynchronous AWS clients (aiobotocore): one client per service per worker, created on first
use on the running loop, with botocore's standard configuration (environment, profiles, the credential
chain; ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``) plus ``[aws]`` overrides."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from express.integrations import AwsSettings, Integrations


class AwsClients:
    """``await clients.client("s3")``: the worker's S3 client (made once, even when asked concurrently)."""

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        self._session: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is not None:
            return client
        async with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._clients[service] = await self._stack.enter_async_context(self._create(service))
        return client

    def _create(self, service: str) -> Any:
        if self._session is None:
            from aiobotocore.session import get_session  # only when a Task first calls AWS

            self._session = get_session()
            if self.settings.profile:
                self._session.set_config_variable("profile", self.settings.profile)
        kw: dict[str, Any] = {}
        if self.settings.region:
            kw["region_name"] = self.settings.region
        endpoint = self.settings.endpoints.get(service) or self.settings.endpoint_url
        if endpoint:
            kw["endpoint_url"] = endpoint
        return self._session.create_client(service, **kw)

    async def aclose(self) -> None:
        self._clients.clear()
        await self._stack.aclose()


def clients(integrations: Integrations) -> AwsClients:
    """The AWS client pool of these integrations."""
    pool: AwsClients = integrations.pooled("aws", lambda: AwsClients(integrations.aws_settings))
    return pool
