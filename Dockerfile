# quai's runtime image. It compiles nothing, so the build needs no Go
# toolchain image, which a machine without a registry cannot pull. Build the
# static binary first (`make image` does both steps):
#
#   CGO_ENABLED=0 go build -trimpath -o bin/quai-linux-amd64 ./cmd/quai
#   DOCKER_BUILDKIT=0 docker build -t quai .
#
# BASE must be Debian-like. apt runs only when git or the CA bundle is
# missing, so a base that already has both builds without network access.
# docs/docker.md explains how to run the image.
ARG BASE=debian:bookworm-slim
FROM ${BASE}

RUN set -eu; \
    if ! command -v git >/dev/null || [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 quai; \
    useradd --system --uid 10001 --gid quai --home-dir /var/lib/quai --shell /usr/sbin/nologin quai; \
    install -d -o quai -g quai -m 0700 /var/lib/quai; \
    install -d -m 0755 /etc/quai/pipelines.d

COPY bin/quai-linux-amd64 /usr/local/bin/quai

# QUAI_LISTEN stays unset, so quai keeps its default 127.0.0.1:8080. The
# container runs with --network host because quai probes deployed apps on
# their published 127.0.0.1 ports, and there the default keeps the web UI
# and the webhook on the host's loopback interface.
ENV QUAI_DATA=/var/lib/quai \
    QUAI_PIPELINES=/etc/quai/pipelines.d

# A numeric user lets runtimes that require a non-root user verify it. The
# Docker socket belongs to root and the docker group, so `docker run` adds
# the socket's group with --group-add.
USER 10001:10001
WORKDIR /var/lib/quai
ENTRYPOINT ["/usr/local/bin/quai"]
CMD ["serve"]
