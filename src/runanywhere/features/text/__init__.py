"""Text generation: the typed request, the decode job on a model's worker, and its results."""

from .generator import GenerationStream, TextGeneration, TextGenerator
from .request import GenerationOptions, GenerationRequest, Prompt
from .result import GenerationResult, TokenEvent

__all__ = ["GenerationOptions", "GenerationRequest", "GenerationResult", "GenerationStream", "Prompt",
           "TextGeneration", "TextGenerator", "TokenEvent"]
