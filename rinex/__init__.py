"""Hub behaviour (RINEX regional hubs and the global ENVIRONET/CEN hub).

A hub runs the same node software with `role = "regional"` or `"global"`. What
makes it a hub is data, not code paths: the directory makes it the key holder
of its region's (or the global) audience, and the routing rules
(`federation.routing`) make it the relay between its members and the rest of
the federation. This package holds what only hubs do with what they hold:
`aggregate` turns the records a hub can read into CEN-style statistics.
"""
