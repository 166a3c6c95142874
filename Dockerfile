# syntax=docker/dockerfile:1
# Build: docker build -t opsboard .
# Run:   docker run -p 8080:8080 -v opsboard-data:/data -e OPSBOARD_JWT_SECRET=... opsboard

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that code changes do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
# The bundled SQLite's compile-time options (LIBSQLITE3_FLAGS), see .cargo/config.toml.
COPY .cargo .cargo
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src src
COPY migrations migrations
COPY config config
# The demo and the state's reference data are compiled into the binary (include_bytes!).
COPY data/demo data/demo
COPY data/reference data/reference
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin opsboard \
 && mkdir -p /data && chown opsboard:opsboard /data
COPY --from=build /src/target/release/opsboard /usr/local/bin/opsboard
USER opsboard
WORKDIR /data
VOLUME ["/data"]
# MIMALLOC_PURGE_DELAY=0: the allocator hands freed pages back at once instead of 10 ms later
# at its next free, which an idle server never makes; with the default, memory after a burst
# stayed where the burst left it (idle demo 58-90 MB, 64 views of a 3,000-card board 164-248
# MB, against a steady 56 and 140 MB). It costs busy board views about 20 % of their
# throughput in page faults.
# MIMALLOC_ARENA_EAGER_COMMIT=0: the allocator commits its arenas as it uses them; with eager
# commit the idle demo held 77 instead of 55 MB (freed start-up memory, the argon2 buffers of
# the first password hashes, stayed resident).
ENV OPSBOARD_BIND=0.0.0.0:8080 \
    DATABASE_URL=/data/opsboard.db \
    RUST_LOG=info \
    MIMALLOC_PURGE_DELAY=0 \
    MIMALLOC_ARENA_EAGER_COMMIT=0
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["opsboard"]
CMD ["serve"]
