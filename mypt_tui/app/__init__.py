"""The terminal app: app (the shell), screens/ (one per mode) and widgets/."""
