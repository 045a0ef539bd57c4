# Multi-stage build for the five services of the suite.
#
# Build one service image:   docker build --target auth -t chat-suite/auth .
# Build everything:          docker compose build   (see compose.yaml)
#
# Stages: build -> runtime (shared base) -> auth | tenancy | billing | chat | gateway.
# Only the legacy-builder-compatible subset of the Dockerfile syntax is used,
# so this also builds with docker-compose 1.x (which does not use BuildKit).

# ---------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------
FROM swift:6.3-noble AS build

WORKDIR /build

# Resolve dependencies first so that this layer is cached until the manifest
# (or the lock file) changes. `Package.*` picks up Package.swift and, when it
# exists, Package.resolved.
COPY ./Package.* ./
RUN if [ -f ./Package.resolved ]; then \
        swift package resolve --force-resolved-versions; \
    else \
        swift package resolve; \
    fi

# Then the sources.
COPY . .

# Build the five service products with the Swift runtime linked statically,
# so the runtime image only needs a plain Ubuntu. SwiftPM reuses the compiled
# modules between products, so the later ones mostly just link.
# Staged into /staging: one binary per service, plus /staging/shared with the
# resource bundles of any dependency (none expected; harmless if absent) and
# the static backtracer, so that a crash prints a symbolicated stack trace.
ARG SERVICES="auth tenancy billing chat gateway"
RUN set -eux; \
    mkdir -p /staging/shared; \
    for product in ${SERVICES}; do \
        swift build -c release --static-swift-stdlib --product "${product}"; \
    done; \
    bin_path="$(swift build -c release --static-swift-stdlib --show-bin-path)"; \
    for product in ${SERVICES}; do \
        cp "${bin_path}/${product}" "/staging/${product}"; \
    done; \
    find -L "${bin_path}/" -maxdepth 1 -regex '.*\.resources$' -exec cp -Ra {} /staging/shared/ \; ; \
    cp /usr/libexec/swift/linux/swift-backtrace-static /staging/shared/

# ---------------------------------------------------------------------------
# Runtime base shared by every service
# ---------------------------------------------------------------------------
FROM ubuntu:noble AS runtime

# ca-certificates: outbound TLS; tzdata: time zones for Foundation;
# curl: container health checks (see compose.yaml), and it brings libcurl, which the services link for
# SMTP mail (the build stage's Swift image has libcurl's headers).
# Versions come from the pinned Ubuntu release; not pinned individually.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive DEBIAN_PRIORITY=critical \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends \
        ca-certificates \
        tzdata \
        curl \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user that owns /app and runs the service.
RUN useradd --uid 10001 --user-group --create-home --system --skel /dev/null --home-dir /app app

WORKDIR /app

# Backtracer and resource bundles (may be an empty directory).
COPY --from=build --chown=app:app /staging/shared/ /app/

ENV HTTP_HOST=0.0.0.0 \
    LOG_LEVEL=info \
    SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/app/swift-backtrace-static

# Numeric, so that runtimes can verify "runs as non-root" (e.g. runAsNonRoot).
USER 10001:10001

# ---------------------------------------------------------------------------
# One stage per service
# ---------------------------------------------------------------------------
FROM runtime AS auth
COPY --from=build --chown=app:app /staging/auth /app/auth
ENV HTTP_PORT=8081
EXPOSE 8081
ENTRYPOINT ["/app/auth"]

FROM runtime AS tenancy
COPY --from=build --chown=app:app /staging/tenancy /app/tenancy
# Branding files (STORAGE_DIR): made here, owned by the service's user, so a volume mounted on it
# starts with that owner.
RUN mkdir -p /app/storage
ENV HTTP_PORT=8082 \
    STORAGE_DIR=/app/storage
EXPOSE 8082
ENTRYPOINT ["/app/tenancy"]

FROM runtime AS billing
COPY --from=build --chown=app:app /staging/billing /app/billing
ENV HTTP_PORT=8083
EXPOSE 8083
ENTRYPOINT ["/app/billing"]

FROM runtime AS chat
# poppler-utils: pdftotext, which reads the text of knowledge-base PDFs (run as a child process).
# hadolint ignore=DL3008
USER root
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends poppler-utils \
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001
COPY --from=build --chown=app:app /staging/chat /app/chat
# Knowledge-base files and attachments (STORAGE_DIR), owned by the service's user.
RUN mkdir -p /app/storage
ENV HTTP_PORT=8084 \
    STORAGE_DIR=/app/storage
EXPOSE 8084
ENTRYPOINT ["/app/chat"]

# Last stage: the default target of a plain `docker build .` is the gateway.
FROM runtime AS gateway
COPY --from=build --chown=app:app /staging/gateway /app/gateway
ENV HTTP_PORT=8080
EXPOSE 8080
ENTRYPOINT ["/app/gateway"]
