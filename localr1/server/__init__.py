"""The local OpenAI-compatible HTTP server (`localr1 serve`); it reaches the model only through the batch scheduler."""
