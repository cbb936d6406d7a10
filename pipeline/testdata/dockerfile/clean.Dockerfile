# A comment first, so the syntax line below is a plain comment.
# syntax=docker/dockerfile:1
FROM busybox:stable
ARG MODE=--mount
RUN echo --mount=type=cache && \
    mount --mount=x
COPY --chown=1000:1000 app /app
CMD ["/app"]
