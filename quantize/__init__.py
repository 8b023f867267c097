"""The quantization pipeline: checkpoint → GGUF conversion, quantization ladder, quality report.

Empty for now; conversion and quantization arrive with their own issues.
"""
