"""The planner's pure parts: model shapes, llama.cpp's tensor-type mix, the memory and speed models.

Nothing here imports llama_cpp: the CLI and the TUI may use all of it.
"""
