# syntax=docker/dockerfile:1.4
# check=skip=all
FROM busybox:stable
RUN --mount=type=cache,target=/root/.cache \
    --network=none \
    echo built
run --security=insecure true
COPY --link app /app
ADD --chown=1:1 --link https://example.com/x /x
RUN <<EOF
RUN --mount=type=secret,id=x cat /run/secrets/x
EOF
RUN true \
  # a comment inside the instruction
  && true
