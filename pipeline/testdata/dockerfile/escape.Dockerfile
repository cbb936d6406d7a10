# escape=`
# Syntax = docker/dockerfile:1
FROM busybox:stable
RUN `
    --mount=type=cache,target=C:\cache `
    echo done
