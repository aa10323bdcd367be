# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY express ./express
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[kafka,metrics,auth]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 express
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --chown=express:express config /config
USER express
WORKDIR /home/express
ENTRYPOINT ["express"]
CMD ["exec", "/config/machines/order-pipeline.asl.json", "--input", "@/config/samples/order.json"]
