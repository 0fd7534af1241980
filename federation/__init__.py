"""Federation: who gets what. Sharing policy and views, audiences, version-vector
replication, per-peer sync jobs and routing. Storage it needs is declared as
Protocols; `node` wires the real implementations."""
