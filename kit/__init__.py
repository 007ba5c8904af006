"""kit: generate infrastructure deliverables from one service model and prove each one works."""

__version__ = "0.1.0"
