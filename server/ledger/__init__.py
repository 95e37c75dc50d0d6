"""ledger room."""
