"""Command-line front door: one module per subcommand, each with examples in its help."""
