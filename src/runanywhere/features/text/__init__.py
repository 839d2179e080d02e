"""The parts of text generation: the typed request, the result types, and the decode job.

:class:`~runanywhere.features.text_generation.TextGenerator` runs them on a model's worker.
"""
