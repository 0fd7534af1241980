"""What the node keeps: the database (`db`, `models`, Alembic `migrations`),
the envelope log and stream heads (`envelope_log`, `bulk_insert`), users,
peers, refusals, alarms, quarantine, custody receipts, audience keys, and the
one file-writing helper. May import crypto and federation (for the Protocols
it implements); never grpc, never node.domain or node.api."""
