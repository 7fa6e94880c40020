# dualstack image: one static binary, plus the tools of its fallbacks.
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
# The binary programs nf_tables and deletes stale UDP conntrack entries over netlink itself:
# with a kernel that has nf_tables, no `nft` or `conntrack` process runs. The tools are the
# fallbacks the start-up probe picks otherwise (netlink first, then `nft -f` with
# `conntrack -D`, then iptables-restore for kernels without nf_tables NAT); `nft` also lets
# `dualstack doctor node` list the whole ruleset from inside the container.
RUN apk add --no-cache nftables iptables ip6tables conntrack-tools
COPY --from=build /dualstack /usr/bin/dualstack
ENTRYPOINT ["/usr/bin/dualstack"]
CMD ["klipper"]
