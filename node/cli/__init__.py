"""The `gcn` command line."""

import os

# gRPC's C core would print its own lines (e.g. a failed TLS handshake) under
# the CLI's one-line errors; keep only its errors. Set before gRPC starts.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
