"""Console pages, one module per area; each function is a view `(ctx) -> Response`."""
