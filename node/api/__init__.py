"""The node's gRPC surface: the officer API (`servicers`, over TLS: `tls`) and
the federation listener (`sync_servicer`, mutual TLS), the interceptors that
authenticate, authorise and map errors, and `server` which starts both. Thin:
servicers translate messages and call domain, storage or federation code."""
