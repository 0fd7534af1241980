"""Every bound on what a node accepts and answers, in one place, and why.

The bounds are chosen together so that whatever validation accepts can always
be read back: the largest record the node stores, in its largest form (a
correction carrying it), opened and sent beside its signed envelope in a
`StoredRecord`, fits a reply of `MAX_REPLY_BYTES`, and the node refuses a
`[server] max_message_bytes` below that (`node.config`). `ListRecords` pages
are bounded by `MAX_PAGE_BYTES` as well as by count, so a page is short rather
than too large. docs/protocol.md ("Limits") lists them for callers.
"""

from __future__ import annotations

from crypto.envelope import MAX_HEADER_BYTES
from federation import outbox

KIB = 1024
MIB = 1024 * KIB

# -- repeated fields of a record (validation refuses more, naming the field) ------------------
MAX_GOODS = 1000  # seizure.goods: a consignment's lines
MAX_PARTIES = 200  # seizure.parties: shipper, consignee, carrier, passengers of a coach
MAX_PERMITS = 200  # seizure.documents.permits
MAX_CONTAINERS = 200  # seizure.conveyance.container_numbers: a large vessel's share of one case
MAX_TRANSIT_COUNTRIES = 30  # seizure.route.transit_countries
MAX_SUBJECTS = 200  # alert.subjects
MAX_INDICATORS = 50  # alert.indicators
MAX_ROUTE_HOPS = 32  # countries in a route subject "CN>VN>KE"

# -- numbers of a record ------------------------------------------------------------------------
# A goods quantity (in its unit) and a declared value: far beyond any seizure,
# and small enough that the figures computed from them (CO2-equivalents, at
# most 1e12 t x a GWP of some 10^4; the sums of statistics over any number of
# records) stay finite.
MAX_QUANTITY = 1e12
MAX_AMOUNT = 1e15

# -- one record ---------------------------------------------------------------------------------
# A validated Seizure or Alert, serialized. 1,000 goods lines of a few hundred
# bytes each fit with room to spare; the bound is what keeps the sum of the
# per-field bounds (which could reach several MiB) readable in one reply.
MAX_RECORD_BYTES = 1 * MIB
# What a RecordBody adds around the record: a correction's reason (2,000
# characters, at most 8,000 bytes of UTF-8), its target id, the record's id,
# view and timestamp.
BODY_OVERHEAD_BYTES = 16 * KIB
MAX_BODY_BYTES = MAX_RECORD_BYTES + BODY_OVERHEAD_BYTES
# An envelope around a body: header (at most 1 KiB), nonce and GCM tag (28
# bytes), signature (64 bytes) and their framing.
MAX_ENVELOPE_BYTES = MAX_BODY_BYTES + MAX_HEADER_BYTES + 1 * KIB
# A StoredRecord: the opened body, the envelope it came from, and the index
# fields (ids, origin, audience, status, timestamps).
MAX_STORED_RECORD_BYTES = MAX_BODY_BYTES + MAX_ENVELOPE_BYTES + 1 * KIB
# A GetRecord reply, or a ListRecords reply of one record with its next page token.
MAX_REPLY_BYTES = MAX_STORED_RECORD_BYTES + 1 * KIB

# -- replies --------------------------------------------------------------------------------------
# ListRecords: a page holds records while their size stays within this (and at
# least one record, which always fits); the rest comes with the next token.
MAX_PAGE_BYTES = MAX_REPLY_BYTES
# The smallest `[server] max_message_bytes` a node may be configured with.
MIN_MESSAGE_BYTES = MAX_REPLY_BYTES
# gRPC's default receive limit of a client (gcn's CLI keeps it): a reply must fit.
CLIENT_RECEIVE_BYTES = 4 * MIB

# -- list requests --------------------------------------------------------------------------------
DEFAULT_PAGE, MAX_PAGE = 50, 500
MAX_PAGE_TOKEN_CHARS = 64

# -- replication (SyncService.Pull) --------------------------------------------------------------
# A Pull batch, whatever the caller asks: at most this many envelopes and bytes
# (a batch always fits the federation listener's 16 MiB messages; its rows are
# read from the database in pieces). 0 in the request means the default.
# The numbers are the federation's (`federation.outbox`); the outbox reads them here at each batch.
PULL_DEFAULT_ENVELOPES = outbox.DEFAULT_MAX_ENVELOPES
PULL_DEFAULT_BYTES = outbox.DEFAULT_MAX_BYTES
PULL_MAX_ENVELOPES = outbox.MAX_ENVELOPES
PULL_MAX_BYTES = outbox.MAX_BYTES


def batch_caps() -> outbox.BatchCaps:
    """The Pull batch caps as they stand now (the node's outbox calls it at each batch)."""
    return outbox.BatchCaps(PULL_DEFAULT_ENVELOPES, PULL_DEFAULT_BYTES, PULL_MAX_ENVELOPES, PULL_MAX_BYTES)


# -- hand-carried bundles -----------------------------------------------------------------------
# One bundle file, signed and serialized. Import reads at most this much (it
# parses the whole file in memory, and applies it like a sync batch); export
# writes what does not fit into further parts (FILE.2, FILE.3, ...).
MAX_BUNDLE_BYTES = 64 * MIB

assert MAX_REPLY_BYTES <= CLIENT_RECEIVE_BYTES, "a maximal record's reply must fit a default client"
