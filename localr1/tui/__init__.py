"""The Textual chat app. Never imports llama_cpp: it consumes the engine's typed events."""
