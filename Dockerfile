# Runtime image of prometheus-multi-tenant-proxy (mtproxy). Non-root, read-only friendly.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY controller controller
COPY reconcilers reconcilers
COPY proxy proxy
COPY remotewrite remotewrite
COPY cmd cmd
COPY apidouble apidouble
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["mtproxy"]
CMD ["--config=/etc/prometheus-proxy/config.yaml"]
