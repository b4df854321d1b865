"""Cross-cutting machinery: settings, database, errors, security, pagination."""
