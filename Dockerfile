# sessionflow's container image: `sessionflow run` as a non-root user, state
# in the /var/lib/sessionflow volume, /metrics /healthz /readyz on :9898.
#
#   docker build -t sessionflow .
#   docker run --rm -e SESSIONFLOW_KAFKA_BROKERS=kafka:9092 -v sessionflow-state:/var/lib/sessionflow sessionflow
#
# Checked by scripts/check-deploy (hadolint). The first build compiles
# RocksDB and librdkafka: about 25 minutes on 2 cores.

# The toolchain CI builds with; the workspace's rust-version (1.88) is the floor.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
# The build half of scripts/system-packages.txt (scripts/check-deploy keeps
# the two in step): libclang for RocksDB's bindings, cmake and the headers
# for librdkafka with TLS, SASL (Cyrus, for Kerberos), libcurl (OAUTHBEARER
# OIDC) and compression. The test and lint tools are not
# needed here. Versions are not pinned: bookworm's point releases replace
# them (a pinned version disappears from the mirrors) with security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential \
      cmake \
      libclang-dev \
      libcurl4-openssl-dev \
      libsasl2-dev \
      libssl-dev \
      pkg-config \
      zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the C++ builds between image builds;
# the binary is copied out because the target directory is not in the layer.
# Debug info (mostly RocksDB's C++) is ~470 MB of the ~500 MB binary: strip
# it, keeping the symbol table so that backtraces still name functions.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sessionflow \
 && strip --strip-debug -o /usr/local/bin/sessionflow target/release/sessionflow

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# What the binary links dynamically (ldd: libssl3/libcrypto, libsasl2,
# libcurl, zlib, libstdc++; libc and libgcc are in the base), Cyrus SASL's
# GSSAPI plugin for Kerberos, and CA certificates for SASL_SSL/SSL brokers.
# Unpinned, as above.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libcurl4 \
      libsasl2-2 \
      libsasl2-modules-gssapi-mit \
      libssl3 \
      libstdc++6 \
      zlib1g \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid, so that Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 sessionflow \
 && useradd --system --uid 10001 --gid sessionflow --home-dir /var/lib/sessionflow --no-create-home --shell /usr/sbin/nologin sessionflow \
 && install -d -o sessionflow -g sessionflow -m 0750 /var/lib/sessionflow
COPY --from=builder /usr/local/bin/sessionflow /usr/local/bin/sessionflow

# Every config key is also an environment variable (docs/configuration.md);
# a config file can be mounted and named by SESSIONFLOW_CONFIG.
# The metrics address must listen beyond loopback inside a container, or
# neither Prometheus nor the health checks from outside can reach it (the
# daemon's default is 127.0.0.1:9898).
ENV SESSIONFLOW_STORE_PATH=/var/lib/sessionflow/state \
    SESSIONFLOW_METRICS_ADDR=0.0.0.0:9898 \
    SESSIONFLOW_LOG_FORMAT=json
# RocksDB state: a volume, so that a new container restores only what
# changed since the last one rather than the whole changelog.
VOLUME ["/var/lib/sessionflow"]
EXPOSE 9898
USER 10001:10001
WORKDIR /var/lib/sessionflow

# The slim image has no curl: bash's /dev/tcp sends the request. /healthz is
# 503 when the processing loop is stalled; the daemon also exits (status 3)
# when one call is stuck, so a restart policy covers that case. The start
# period covers opening a large RocksDB store after a crash.
HEALTHCHECK --interval=15s --timeout=5s --start-period=2m --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SESSIONFLOW_METRICS_ADDR##*:} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r -t 4 _ status _ <&3 && [ \"$status\" = 200 ]"]

# SIGTERM finishes and commits the current batch: give `docker stop` time
# (-t 60, compose's stop_grace_period) rather than its default 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sessionflow"]
CMD ["run"]
