"""The ``gentrain`` command line: run the service's processes, and talk to its API."""
