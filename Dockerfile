# Multigres: the five executables (multigateway, multipooler, pgctld, multiorch, multigres)
# built with `deno task compile`, on Debian with PostgreSQL 15, etcd and pgBackRest.
#
#   docker build -t multigres .
#   docker run --rm -v multigres-data:/data multigres
#
# The default command runs a whole local cluster (etcd, pgctld + Postgres, pooler, orch,
# gateway) in the foreground, with its data in /data.

# ---- build: compile the executables ----
FROM node:20-bookworm-slim AS build

# Deno 2.9.3 exactly: 2.9.4-2.9.6 crash a grpc-js server when a client closes its channel.
RUN npm install -g deno@2.9.3 && deno --version

WORKDIR /src
COPY deno.json deno.lock ./
RUN deno install --frozen

COPY proto/ proto/
COPY src/ src/
COPY scripts/ scripts/
# deno compile downloads Deno's denort runtime here; on a closed network, copy a denort 2.9.3
# binary into this stage and set DENORT_BIN to its path before this line.
RUN deno task compile

# ---- run ----
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive
# postgresql-common is installed first so that the package does not create a default cluster:
# pgctld initialises its own data directory under /data.
RUN apt-get update \
  && apt-get install -y --no-install-recommends postgresql-common \
  && sed -ri 's/^#?\s*create_main_cluster\s*=.*$/create_main_cluster = false/' \
    /etc/postgresql-common/createcluster.conf \
  && apt-get install -y --no-install-recommends \
    postgresql-15 etcd-server etcd-client pgbackrest ca-certificates openssl \
  && rm -rf /var/lib/apt/lists/*

COPY --from=build /src/bin/ /usr/local/bin/

# Postgres refuses to run as root: everything runs as this user, which owns /data.
RUN useradd --create-home --uid 10001 --user-group multigres \
  && install -d -o multigres -g multigres -m 700 /data
USER multigres
VOLUME /data

# PostgreSQL protocol (multigateway).
EXPOSE 15432

# --bin-dir: run the compiled executables rather than `deno run` on the sources.
CMD ["multigres", "cluster", "start", "--foreground", "--data-dir", "/data", "--bin-dir", "/usr/local/bin", "--listen", "0.0.0.0"]
