# syntax=docker/dockerfile:1
# express: `docker build -t express .` then
#   docker run --rm -p 8080:8080 -v "$PWD/config:/config:ro" express
# (config/ holds express.toml and machines/; every setting can be overridden with -e EXPRESS_<SECTION>_<KEY>=...)

# --- build: wheels for express and every dependency (compilers, if any are needed, stay in this stage)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY express ./express
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[kafka,auth]'

# --- runtime: the wheels installed into a plain slim image, run as a non-root user
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXPRESS_HTTP_HOST=0.0.0.0 \
    EXPRESS_HTTP_PORT=8080 \
    EXPRESS_STATE_DIR=/home/express/state
# the machine store lives outside /config, which is usually mounted read-only; mount a volume on
# /home/express/state to keep API-created machines across container restarts
RUN useradd --create-home --uid 10001 --user-group express \
    && install -d -o express -g express /home/express/state
COPY --from=build /wheels /tmp/wheels
# every wheel the build stage made: express and its dependencies (kafka and auth extras); nothing downloaded
RUN pip install --no-cache-dir --no-index /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels
# a default config, so the image runs on its own; mount your folder over /config
COPY --chown=express:express config /config
USER 10001:10001
WORKDIR /home/express
EXPOSE 8080
# /healthz answers 200 while the HTTP server runs (slim has no curl: Python's urllib does the request;
# any error, refused connection or non-2xx status exits 1, which Docker counts as unhealthy)
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; r = urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
ENTRYPOINT ["express"]
CMD ["serve", "--config", "/config"]
