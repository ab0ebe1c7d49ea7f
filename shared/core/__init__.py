"""Pure product logic: no Azure SDK, no sqlite3, no environment reads."""
