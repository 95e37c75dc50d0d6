"""Arbiter: a loyalty and promotion calculation server.

The installed namespace: arbiter.server, arbiter.client and arbiter.v1 (generated stubs).
"""

import os

__version__ = "0.1.0"

# Arbiter never uses gRPC in a forked child: it forks only to exec PostgreSQL's binaries, as
# another account when it runs as root. gRPC's fork handlers then race with its own threads: a
# child could log "epoll_wait error: Bad file descriptor" and die before its exec (seen: 2 in
# 300 forks under load; it failed an initdb in CI). Set here, before anything imports grpc;
# an explicit setting in the environment wins.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
