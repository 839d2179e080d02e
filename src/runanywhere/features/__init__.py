"""Capabilities: one module each (text generation, speech, vision, embeddings, voice...)."""
