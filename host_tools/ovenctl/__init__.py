"""ovenctl: host tools for the in-oven weighing controller (vacuum mass-loss test)."""
__version__ = "0.1.0"
