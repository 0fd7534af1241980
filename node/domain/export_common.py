"""What the exports (`export_stix`, `export_csv`) share: a stored record seen as
the seizure or alert it shows, and the short names of enum values.

A search hit is a seizure, an alert, or a correction that stands for the record
it corrects; `exported()` unwraps the correction. A record too large for a
reply carries no body and is not exported (`too_large`); the CLI counts those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec


def short(enum: Any, value: int, prefix: str) -> str:
    """DETECTION_METHOD_NII_SCAN → 'nii-scan' (as the CLI spells it); '' for 0."""
    if not value:
        return ""
    try:
        return str(enum.Name(value)).removeprefix(prefix).lower().replace("_", "-")
    except ValueError:
        return str(value)


def from_short(enum: Any, prefix: str, text: str) -> int:
    """The inverse of `short`: 'nii-scan' → DETECTION_METHOD_NII_SCAN; 0 for ''."""
    if not text:
        return 0
    return int(enum.Value(prefix + text.upper().replace("-", "_")))


TLP_LABELS: dict[int, str] = {
    rec.TLP_CLEAR: "TLP:CLEAR",
    rec.TLP_GREEN: "TLP:GREEN",
    rec.TLP_AMBER: "TLP:AMBER",
    rec.TLP_AMBER_STRICT: "TLP:AMBER+STRICT",
    rec.TLP_RED: "TLP:RED",
}


def view_name(view: int) -> str:
    return short(epb.View, view, "VIEW_")


def status_name(status: int) -> str:
    return short(npb.RecordStatus, status, "RECORD_STATUS_")


@dataclass(frozen=True)
class Exported:
    """One record as the exports see it: `seizure` or `alert` is set."""

    record: npb.StoredRecord
    seizure: rec.Seizure | None
    alert: rec.Alert | None
    corrects: str  # the record id a correction replaces, else ''
    correction_reason: str

    @property
    def kind(self) -> str:
        return "seizure" if self.seizure is not None else "alert"

    @property
    def tlp(self) -> int:
        return self.seizure.tlp if self.seizure is not None else self.alert.tlp if self.alert else 0


def exported(r: npb.StoredRecord) -> Exported | None:
    """`r` as a seizure or an alert; None for what is neither (a retraction, a
    key, a correction without its replacement, a record too large to carry)."""
    which = r.WhichOneof("body")
    if r.too_large or which is None:
        return None
    if which == "seizure":
        return Exported(r, r.seizure, None, "", "")
    if which == "alert":
        return Exported(r, None, r.alert, "", "")
    if which == "correction":
        c = r.correction
        replacement = c.WhichOneof("replacement")
        if replacement == "seizure":
            return Exported(r, c.seizure, None, c.target_record_id, c.reason)
        if replacement == "alert":
            return Exported(r, None, c.alert, c.target_record_id, c.reason)
    return None
