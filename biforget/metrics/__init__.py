"""Set-quality measures: diversity so far."""
