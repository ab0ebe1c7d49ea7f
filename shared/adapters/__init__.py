"""Adapters: the only modules that import Azure SDKs or sqlite3."""
