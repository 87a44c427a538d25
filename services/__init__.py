"""Processes users talk to: the HTTP API and the ``gentrain`` command line."""
