"""Settings, wiring, `serve`, and the embedded PostgreSQL."""
