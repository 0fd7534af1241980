"""A customs administration's gcn node.

- `node.domain`: the record rules (validation, limits), writing one's own
  records and reading any held one, the search index. No grpc.
- `node.storage`: everything in the node's database (envelope log, streams,
  users, peers, refusals, alarms, custody receipts, audience keys) and the
  one helper that writes files. No grpc.
- `node.api`: the two gRPC servers (officer API, federation listener), their
  servicers and interceptors. Thin: every decision is in domain/federation code.
- `node.cli`: the `gcn` command line.
- `node.testing`: a federation on loopback and a manual clock, for tests and
  benches; no production path imports it.
- `node.app` is the composition root; `node.config` the node's settings.
"""
