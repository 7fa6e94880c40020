# dualstack image: one static binary plus the nft/iptables/conntrack tools it drives.
#
# Used as a drop-in for K3s's svclb pods (see docs/klipper.md): K3s starts the container with the
# klipper-lb environment (SRC_PORT, DEST_PROTO, DEST_PORT, DEST_IPS, ...) and no command, so the
# default command is `dualstack klipper`.
#
#   docker build -t ghcr.io/YOU/dualstack:dev .

FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# On Alpine the host target is musl, which links statically by default.
RUN cargo build --release --locked --bin dualstack && \
    cp target/release/dualstack /dualstack && \
    strip /dualstack

FROM alpine:3.22
# nftables: the data plane; iptables/ip6tables: the fallback for kernels without nf_tables NAT;
# conntrack-tools: flushing stale UDP flows after a change.
RUN apk add --no-cache nftables iptables ip6tables conntrack-tools
COPY --from=build /dualstack /usr/bin/dualstack
ENTRYPOINT ["/usr/bin/dualstack"]
CMD ["klipper"]
