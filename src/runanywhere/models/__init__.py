"""Model catalog, downloads and the on-disk store."""
