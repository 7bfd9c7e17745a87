# syntax=docker/dockerfile:1

# Build stage: a static binary (no cgo: the stores are pure-Go drivers).
FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0

# Modules in their own layer: it is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/phoneshop ./cmd/phoneshop

# Final stage: no shell, no package manager, a non-root user. Health checks use
# `phoneshop probe URL` since the image has no curl.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/phoneshop /phoneshop
USER nonroot:nonroot
ENTRYPOINT ["/phoneshop"]
