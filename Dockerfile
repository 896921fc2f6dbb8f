# syntax=docker/dockerfile:1
# The image of prometheus-multi-tenant-proxy: `make dist && docker build -t IMG .`
#
# Stage 1 resolves the wheel from `make dist` (dist/*.whl, the one tests/deploy/test_wheel.py
# installs and runs) and its runtime dependencies into a directory of wheels: binary wheels
# only, so nothing is compiled and no compiler is needed. Stage 2 installs exactly those
# wheels with no index, then removes pip and setuptools: the final image has the
# interpreter, the service and its runtime dependencies, and no build tools, no test extras
# and no source tree. It runs as nobody (65534) and writes nothing to its root filesystem.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY dist/ dist/
RUN set -eu; \
    set -- dist/prometheus_multi_tenant_proxy-*-py3-none-any.whl; \
    if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then echo "dist/ must hold one wheel: run make dist" >&2; exit 1; fi; \
    pip wheel --only-binary=:all: --wheel-dir /wheels "$1"

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels prometheus-multi-tenant-proxy \
    && pip uninstall --yes pip setuptools wheel
LABEL org.opencontainers.image.title="prometheus-multi-tenant-proxy" \
      org.opencontainers.image.description="Multi-tenant query proxy and lossless remote-write forwarder for a shared Prometheus" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["mtproxy"]
CMD ["--config=/etc/prometheus-proxy/config.yaml"]
