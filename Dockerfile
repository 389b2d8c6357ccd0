# Tripline daemon image. Two stages: build with the Rust toolchain, run on a slim Debian with a
# non-root user. Not built on the development machine (no Docker engine there): see docs/deploy.md.
#
#   docker build -t tripline .
#   docker run -v $PWD/tripline.toml:/etc/tripline/tripline.toml:ro -p 9095:9095 tripline

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tripline --bin tripline \
 && install -D -m 0755 target/release/tripline /out/tripline

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tripline \
 && useradd --system --uid 10001 --gid tripline --home-dir /var/lib/tripline --shell /usr/sbin/nologin tripline \
 && install -d -o tripline -g tripline -m 0750 /var/lib/tripline /etc/tripline
COPY --from=build /out/tripline /usr/local/bin/tripline
USER tripline:tripline
WORKDIR /var/lib/tripline
# The daemon's API and /metrics; set `[server] listen = "0.0.0.0:9095"` in the config.
EXPOSE 9095
VOLUME ["/var/lib/tripline"]
ENTRYPOINT ["/usr/local/bin/tripline"]
CMD ["run", "--config", "/etc/tripline/tripline.toml"]
