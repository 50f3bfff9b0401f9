"""One module per `mypt` subcommand: `register(subparsers)` adds its flags, `run(args)` does it."""
