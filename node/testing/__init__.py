"""Test and bench helpers: a federation of nodes on loopback
(`local_federation`) and a clock that moves only when told (`clock`).
Production request paths never import this package (import-linter checks)."""
