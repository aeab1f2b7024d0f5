# syntax=docker/dockerfile:1
# ctxfy's container image: the MCP server on 0.0.0.0:8000 as a non-root user (UID 10001),
# data in the /data volume, a read-only root filesystem welcome, HEALTHCHECK on /health.
#
#   docker build -t ctxfy:dev --build-arg VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' ctxfy/__about__.py)" .
#   (without VERSION the version label says 0.0.0+unknown)
#   docker run --rm -v ctxfy-data:/data ctxfy:dev keys create --name admin --scope admin
#   docker run -d --read-only -p 127.0.0.1:8000:8000 -v ctxfy-data:/data ctxfy:dev
#
# Both stages use the same base, so the virtual environment built in the first one finds its
# interpreter at the same path in the second. Pin BASE_IMAGE by digest in your registry
# (python:3.13-slim-trixie@sha256:...); scripts/container-smoke.sh builds an equivalent image
# locally (Debian 13 + its Python 3.13) and tags it with this name when no registry is at hand.
ARG BASE_IMAGE=docker.io/library/python:3.13-slim-trixie

# --- build: wheels for ctxfy and its pinned dependencies, installed into /opt/venv ---------
# Extras: redis (keys and rate limits shared by replicas), otlp (traces over OTLP/HTTP when
# OTEL_EXPORTER_OTLP_ENDPOINT is set).
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY deploy/docker/constraints.txt /src/constraints.txt
COPY pyproject.toml README.md LICENSE /src/
COPY ctxfy /src/ctxfy
# /opt/build holds pip; /opt/venv (what ships) gets none: pip installs into it from outside.
# Every dependency ships a wheel for CPython 3.13, so no compiler is needed here either.
# Behind a TLS-inspecting proxy, pass its CA bundle as a build secret (never a layer):
#   --secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip wheel --wheel-dir /wheels --constraint constraints.txt ".[redis,otlp]" \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --no-index --find-links /wheels \
        --constraint constraints.txt "ctxfy[redis,otlp]" \
 && /opt/venv/bin/python -c "import ctxfy, redis, opentelemetry.exporter.otlp.proto.http.trace_exporter; print('ctxfy', ctxfy.__version__)"

# --- runtime: the interpreter, the virtual environment, nothing else -----------------------
FROM ${BASE_IMAGE} AS runtime
# An ARG declared before the first FROM is only visible in FROM lines: declare it again
# (no default: it inherits the one above) so that the base.name label below gets it.
ARG BASE_IMAGE
ARG VERSION=0.0.0+unknown
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/ctxfy/ctxfy
LABEL org.opencontainers.image.title="ctxfy" \
      org.opencontainers.image.description="Context-engineering MCP server with API keys, rate limits, validation, JSON logs and Prometheus metrics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.documentation="${SOURCE}/tree/main/docs" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.vendor="ctxfy developers" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# A fixed, unprivileged UID/GID (outside the range distributions hand out) that Kubernetes'
# runAsUser and volume ownership can name. No login shell, no home directory.
RUN groupadd --gid 10001 ctxfy \
 && useradd --uid 10001 --gid ctxfy --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin ctxfy \
 && install --directory --owner=10001 --group=10001 --mode=0700 /data

COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /opt/ctxfy/healthcheck.py

# Nothing is written outside /data: no bytecode caches, no user data directory.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CTXFY_HOST=0.0.0.0 \
    CTXFY_PORT=8000 \
    CTXFY_DATA_DIR=/data

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000

# Exits 1 on anything but a 2xx from /health (standard library only: no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/opt/venv/bin/python", "/opt/ctxfy/healthcheck.py", "/health"]

# ctxfy handles SIGTERM itself: in-flight requests get CTXFY_SHUTDOWN_GRACE_S, then it exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/venv/bin/python", "-m", "ctxfy"]
CMD ["serve"]
