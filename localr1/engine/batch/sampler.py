"""One llama.cpp sampler chain per sequence, built from SamplingParams the way the single-sequence engine samples."""

from __future__ import annotations

import llama_cpp

from localr1.engine.params import SamplingParams

PENALTY_WINDOW = 64  # tokens the repeat penalty looks back over (llama-cpp-python's default)
DEFAULT_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: a random seed


class SamplerChain:
    """A native sampler chain; `sample` picks and accepts a token from one output row of the last decode."""

    def __init__(self, sampling: SamplingParams) -> None:
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        self._chain = llama_cpp.llama_sampler_chain_init(params)
        add = self._add
        if sampling.repeat_penalty != 1.0:
            add(llama_cpp.llama_sampler_init_penalties(PENALTY_WINDOW, sampling.repeat_penalty, 0.0, 0.0))
        if sampling.temperature <= 0.0:
            add(llama_cpp.llama_sampler_init_greedy())
            return
        if sampling.top_k > 0:
            add(llama_cpp.llama_sampler_init_top_k(sampling.top_k))
        if sampling.top_p < 1.0:
            add(llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
        if sampling.min_p > 0.0:
            add(llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(sampling.temperature))
        seed = DEFAULT_SEED if sampling.seed is None else sampling.seed
        add(llama_cpp.llama_sampler_init_dist(seed))

    def _add(self, sampler: llama_cpp.llama_sampler_p) -> None:
        llama_cpp.llama_sampler_chain_add(self._chain, sampler)

    def sample(self, ctx: llama_cpp.llama_context_p, output_index: int) -> int:
        """The next token from output row `output_index` (the chain records it)."""
        return int(llama_cpp.llama_sampler_sample(self._chain, ctx, output_index))

    def close(self) -> None:
        """Free the chain and its samplers."""
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None
