"""The ``descend`` command: thin subcommands that parse, call the library and print."""
