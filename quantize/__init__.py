"""The quantization pipeline, one package per stage.

- `quantize.convert`: a Hugging Face checkpoint (safetensors) → an F32/F16/BF16/Q8_0 GGUF.
- `quantize.ladder`: an unquantized GGUF (or a checkpoint) → importance matrix → one GGUF per quant type,
  with a manifest that lets an interrupted run resume.
- `quantize.quality`: how good the results are: a converted file checked against its checkpoint, and
  every variant of a ladder measured against its base (perplexity, KL divergence, top-1, speed).

Shared by the stages: `errors`, `progress` (rich bars), `llama_log` (llama.cpp's log captured),
`runner` (a GGUF opened through llama.cpp's low-level API). Dependencies run one way:
quality → ladder → convert.
"""
