"""Vision-language models: images and a prompt in, text out (llama.cpp multimodal)."""

from .model import VLM, Images, VisionLanguageModel, VLMStream
from .results import VLMResult, VLMStageStarted

__all__ = ["VLM", "Images", "VLMResult", "VLMStageStarted", "VLMStream", "VisionLanguageModel"]
