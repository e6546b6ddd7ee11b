"""Many accounts on one deployment: an accounts catalog and workers that share the accounts out between them
(docs/operations.md, "Many accounts")."""
