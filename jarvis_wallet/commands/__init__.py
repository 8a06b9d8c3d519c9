"""One module per CLI command group; each is thin glue over the library."""
