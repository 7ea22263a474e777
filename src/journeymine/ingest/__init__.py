"""Landing files to the raw layer: the sources' parsers, staging, the commit."""
