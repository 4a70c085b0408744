# syntax=docker/dockerfile:1
# learnstream: one image for every `learnstream` command.
#   docker build -t learnstream:0.1.0 .
#   docker run --rm learnstream:0.1.0 --help
#   docker run --rm -e LEARNSTREAM_DATABASE_URL=... learnstream:0.1.0 migrate
# The default command is the ingest worker; /metrics is served on 9464.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the project and its dependencies into a virtualenv --------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Compilers only in this stage, for any dependency that has no wheel for this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README* is optional (pyproject names it as the long description when it exists).
COPY pyproject.toml README* ./
COPY streams ./streams
COPY schemas ./schemas
COPY db ./db
RUN pip install --upgrade pip setuptools wheel \
 && pip install . \
 && learnstream --help >/dev/null

# ---- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="learnstream" \
      org.opencontainers.image.description="Kafka -> Faust -> partitioned PostgreSQL ingest"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LEARNSTREAM_STATE_DIR=/var/lib/learnstream \
    LEARNSTREAM_DATA_DIR=/var/lib/learnstream/faust \
    LEARNSTREAM_METRICS_HOST=0.0.0.0 \
    LEARNSTREAM_METRICS_PORT=9464

RUN groupadd --system --gid 10001 learnstream \
 && useradd --system --uid 10001 --gid learnstream --home-dir /var/lib/learnstream \
        --shell /usr/sbin/nologin learnstream \
 && mkdir -p /var/lib/learnstream/faust \
 && chown -R learnstream:learnstream /var/lib/learnstream

COPY --from=build /opt/venv /opt/venv

WORKDIR /var/lib/learnstream
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

EXPOSE 9464

ENTRYPOINT ["learnstream"]
CMD ["worker"]
