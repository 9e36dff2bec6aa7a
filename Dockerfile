# Multi-stage build: a static attestd (pure Go: modernc SQLite, no cgo) on a
# distroless base, running as an unprivileged user with its state on a volume.
#   docker build -t attestd .
#   docker run -p 8443:8443 -v attestd-data:/var/lib/attestd attestd
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/attestd ./cmd/attest

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/attestd /out/attest /usr/local/bin/
USER 65532:65532
VOLUME ["/var/lib/attestd"]
EXPOSE 8443 9090
ENV ATTESTD_DATA=/var/lib/attestd ATTESTD_LISTEN=0.0.0.0:8443 ATTESTD_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/attestd"]
CMD ["serve", "--metrics-listen", "0.0.0.0:9090"]
