"""The ``runanywhere`` command line."""

MODEL_HELP = "catalog id or {what} path (default: the catalog's default {kind} model)"
"""Help text of a model option: its default is the model the catalog marks default, read when loading."""
