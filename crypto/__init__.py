"""Every call into `cryptography` lives in this package.

Nothing here does I/O except `keys` (which reads and writes the node's own key
files): signing, envelope sealing and opening, audience key wrapping and
verification are pure functions over bytes and objects, so they can be tested
without a server, a database or a clock.
"""
