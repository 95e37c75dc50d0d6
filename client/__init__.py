"""The Python client library and the `arbiter` command line."""
