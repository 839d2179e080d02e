"""The ``runanywhere`` command line."""
