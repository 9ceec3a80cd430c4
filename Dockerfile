# receiver as a small container: `receiver serve` on port 8080, the SQLite database on a volume
# at /data. Build: docker build -t receiver .   Run: see README, "Deploy to fly.io".

# -- build: install the package and its dependencies into a venv ---------------------------------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY receiver /src/receiver
RUN /opt/venv/bin/pip install /src

# -- run: the venv, the example config, a non-root user ------------------------------------------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RECEIVER_CONFIG=/app/config/receiver.toml \
    RECEIVER_DB=/data/receiver.db
# A fixed uid: volume hosts (fly.io among them) mount /data for the image's user.
RUN groupadd --system --gid 10001 receiver \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin receiver \
    && mkdir -p /data /app/config \
    && chown receiver:receiver /data
COPY --from=build /opt/venv /opt/venv
COPY config/receiver.toml /app/config/receiver.toml
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
CMD ["receiver", "serve", "--host", "0.0.0.0", "--port", "8080"]
