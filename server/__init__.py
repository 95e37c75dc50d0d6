"""The Arbiter server: everything that runs behind the port."""
