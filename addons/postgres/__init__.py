"""The Postgres add-on: a managed server (or an external one), databases, backups."""
