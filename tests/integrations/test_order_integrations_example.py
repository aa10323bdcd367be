"""The shipped example config/machines/order-integrations.asl.json, end to end against real services: an
HTTP pricing API (aiohttp on loopback, behind an API_KEY connection), DynamoDB (the session's moto
server) and Kafka (the embedded broker)."""
from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from express import Engine
from express.integrations import Integrations
from express.integrations.connections import Connection
from express.kafka.producer import TaskProducer

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "machines" / "order-integrations.asl.json"
SAMPLE = ROOT / "config" / "samples" / "order.json"


@pytest.fixture
async def pricing() -> AsyncIterator[tuple[str, list[Any]]]:
    """The pricing API the example calls: POST /v1/quotes with the connection's API key."""
    seen: list[Any] = []

    async def quote(request: web.Request) -> web.Response:
        if request.headers.get("x-api-key") != "secret-key":
            return web.json_response({"message": "forbidden"}, status=403)
        body = await request.json()
        seen.append(body)
        total = sum(item["qty"] * item["price"] for item in body["items"])
        return web.json_response({"total": total, "currency": "EUR"})

    app = web.Application()
    app.router.add_post("/v1/quotes", quote)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1/quotes", seen
    finally:
        await runner.cleanup()


async def test_the_example_prices_stores_and_announces_an_order(moto_env: str, bootstrap: str,
                                                               pricing: tuple[str, list[Any]]) -> None:
    import aiobotocore.session

    endpoint, seen = pricing
    definition = orjson.loads(EXAMPLE.read_bytes())
    definition["States"]["Price"]["Parameters"]["ApiEndpoint"] = endpoint  # the loopback stand-in
    session = aiobotocore.session.get_session()
    async with session.create_client("dynamodb") as ddb:
        try:
            await ddb.create_table(TableName="Orders", AttributeDefinitions=[{"AttributeName": "id",
                                                                              "AttributeType": "S"}],
                                   KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                                   BillingMode="PAY_PER_REQUEST")
        except ddb.exceptions.ResourceInUseException:
            pass
        producer = TaskProducer(bootstrap, linger_ms=0)
        connection = Connection(name="pricing", authorization="API_KEY", api_key_name="x-api-key",
                                api_key_value="secret-key")
        integrations = Integrations(connections={"pricing": connection}, kafka=producer)
        try:
            machine = Engine(integrations=integrations).compile(definition, "order-integrations")
            result = await machine.execute(orjson.loads(SAMPLE.read_bytes()))
        finally:
            await integrations.aclose()
            await producer.aclose()
        assert result.status == "SUCCEEDED", (result.error, result.cause)
        assert seen == [{"orderId": "ord-000123", "items": [{"sku": "SKU-000", "qty": 1, "price": 9.5},
                                                            {"sku": "SKU-001", "qty": 2, "price": 10.5}]}]
        assert result.output["price"] == {"total": 30.5, "currency": "EUR"}
        item = (await ddb.get_item(TableName="Orders", Key={"id": {"S": "ord-000123"}}))["Item"]
    assert item == {"id": {"S": "ord-000123"}, "customer": {"S": "Alice"}, "total": {"N": "30.5"},
                    "currency": {"S": "EUR"}}
    announced = result.output["announced"]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition("orders.priced", announced["partition"])
        consumer.assign([tp])
        consumer.seek(tp, announced["offset"])
        record = await asyncio.wait_for(consumer.getone(tp), 30)
    finally:
        await consumer.stop()
    assert record.key == b"ord-000123"
    assert orjson.loads(record.value) == {"orderId": "ord-000123", "total": 30.5, "currency": "EUR"}
    assert list(record.headers) == [("source", b"order-integrations")]
