"""Monitoring content built from the Spec: rules, their unit tests, the dashboard, runbooks."""
