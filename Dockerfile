# receiver as a small container: `receiver serve` on port 8080, the SQLite database on a volume
# at /data, replicated by Litestream when LITESTREAM_REPLICA_URL is set (deploy/entrypoint.sh).
# Build: docker build -t receiver .   Run: see README, "Deploy to fly.io" and "Operations".
#
# Reproducible: the base image is pinned to a patch release, and every dependency to a version
# and its hashes (deploy/requirements.lock, deploy/build.lock; deploy/lock regenerates them).
# The dependencies are a layer of their own, built before the code is copied: a code change
# rebuilds and ships only the small layer of the package itself.

# -- dependencies: the lock, hashes required, and nothing else ------------------------------------
FROM python:3.11.16-slim-trixie AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY deploy/requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock

# -- build: the package's wheel, by the locked build backend --------------------------------------
FROM python:3.11.16-slim-trixie AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY deploy/build.lock /tmp/build.lock
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --no-deps -r /tmp/build.lock
COPY pyproject.toml README.md /src/
COPY receiver /src/receiver
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels /src

# -- run: the dependencies' layer, then the package, the config and the entrypoint ----------------
FROM python:3.11.16-slim-trixie
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    RECEIVER_CONFIG=/app/config/receiver.toml \
    RECEIVER_DB=/data/receiver.db
# A fixed uid: volume hosts (fly.io among them) mount /data for the image's user.
RUN groupadd --system --gid 10001 receiver \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin receiver \
    && mkdir -p /data /app/config \
    && chown receiver:receiver /data
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /wheels /tmp/wheels
# --no-deps: the lock brought every dependency; pip check fails the build if one is missing.
RUN pip install --no-deps /tmp/wheels/receiver-*.whl \
    && rm -rf /tmp/wheels \
    && pip check
COPY config/receiver.toml /app/config/receiver.toml
COPY deploy/entrypoint.sh deploy/litestream.yml /app/deploy/
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
CMD ["/app/deploy/entrypoint.sh"]
