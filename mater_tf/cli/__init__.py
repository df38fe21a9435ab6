"""The `mater-tf` command line: one module per subcommand."""
