"""Audit events: stored in the audit table and written to the audit log. Never secrets."""
