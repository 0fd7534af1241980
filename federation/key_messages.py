"""When a key message may change anything (pure).

A key message (an envelope of kind KEY) hands out an audience epoch key. Any
member can write one into its own stream, so being well signed is not enough:
it is believed only if

- its body parses and names the same audience as its header (a member's
  stream cannot carry another audience's epoch);
- its origin may issue that audience's keys (the current holder, or a revoked
  former holder for what it issued before: its key windows judge the time);
- its epoch is in range: at least 1, at most the minutes since 1970 at the
  time it was received (plus the clock slack) and `EPOCH_AHEAD` minutes more.
  Holders number epochs from the minutes since 1970, so an honest holder is
  always inside; a high number can never lock the next epoch out of the
  32-bit column (2^31 - 1 lies past the year 6000).

One that fails is kept in the log as evidence, raises an alarm, and is never
learned: no key, no "highest epoch seen".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from google.protobuf.message import DecodeError

from gcn.v1 import envelope_pb2 as epb

MAX_EPOCH = 2**31 - 1  # the epoch columns are 32-bit signed on PostgreSQL
EPOCH_AHEAD = 7 * 24 * 60  # a week of minutes: room for bursts of epochs, and clocks
CLOCK_SLACK = timedelta(minutes=5)


def epoch_ceiling(at: datetime) -> int:
    return min(MAX_EPOCH, int((at + CLOCK_SLACK).timestamp() // 60) + EPOCH_AHEAD)


def judge_body(
    header: epb.EnvelopeHeader,
    body: bytes,
    may_issue: Callable[[str, str], bool],
    at: datetime,
) -> tuple[epb.KeyMessage | None, str]:
    """(the key message, "") if it may be learned, else (None, why not)."""
    msg = epb.KeyMessage()
    try:
        msg.ParseFromString(body)
    except DecodeError:
        return None, "its body does not parse as a key message"
    if msg.audience != header.audience:
        return None, f"its body names {msg.audience!r} in an envelope of {header.audience!r}"
    if not may_issue(header.origin, header.audience):
        return None, f"{header.origin} may not issue the keys of {header.audience}"
    ceiling = epoch_ceiling(at)
    if not 1 <= msg.epoch <= ceiling:
        return None, f"epoch {msg.epoch} is out of range (1..{ceiling} at {at.isoformat()})"
    return msg, ""
