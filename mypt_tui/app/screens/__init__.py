"""Screens of the app, one file each (one per mode)."""
