"""The `mypt` command: main (the parser and dispatch) and one module per subcommand."""
