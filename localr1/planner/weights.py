"""Where a model's weight bytes lie: per repeating layer, the input embedding and the output head,
each split by ggml type (decode speed differs by type). Built from a GGUF header (exact) or from a shape and
a file type through llama.cpp's mix rule (before a download)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import gguf

from localr1.gguf_header import GGUFHeader
from localr1.planner.mix import mixed_tensors
from localr1.planner.shape import ModelShape

ALIGNMENT = 32  # GGUF's default: every tensor's data starts on this boundary


@dataclass(frozen=True)
class Part:
    """Bytes by ggml type name, and the matrix weights (for prompt FLOPs) of one part of the model."""

    bytes_by_type: dict[str, int] = field(default_factory=dict)
    params: int = 0

    @cached_property
    def total(self) -> int:
        """All bytes of the part."""
        return sum(self.bytes_by_type.values())


@dataclass(frozen=True)
class WeightsLayout:
    """A model's weights: repeating layers, input (token embedding, rope factors) and output (norm, head)."""

    layers: tuple[Part, ...]
    input: Part
    output: Part
    tied_embeddings: bool

    @cached_property
    def total(self) -> int:
        """Bytes of all tensor data (with GGUF's alignment padding)."""
        return sum(p.total for p in self.layers) + self.input.total + self.output.total

    @cached_property
    def streamed_output(self) -> Part:
        """What the output step reads per token: the head, or the whole embedding when it is tied."""
        if not self.tied_embeddings:
            return self.output
        merged = dict(self.output.bytes_by_type)
        for name, size in self.input.bytes_by_type.items():
            merged[name] = merged.get(name, 0) + size
        return Part(merged, self.output.params + self.input.params)

    @cached_property
    def layer_totals(self) -> tuple[int, ...]:
        """Bytes of each repeating layer."""
        return tuple(p.total for p in self.layers)

    def repacked_bytes(self, types: frozenset[str]) -> tuple[tuple[int, ...], int, int]:
        """Bytes of these ggml types in each layer, in the output head and in the tied head (cached)."""
        cache: dict[frozenset[str], tuple[tuple[int, ...], int, int]] = self.__dict__.setdefault("_repacked", {})
        if types not in cache:
            def of(part: Part) -> int:
                return sum(size for name, size in part.bytes_by_type.items() if name in types)

            cache[types] = (tuple(of(p) for p in self.layers), of(self.output), of(self.streamed_output))
        return cache[types]

    @classmethod
    def from_tensors(cls, tensors: Iterable[tuple[str, str, int, int, int]], n_layers: int,
                     *, padded: bool = True) -> WeightsLayout:
        """From (name, ggml type name, bytes, elements, dims) of every tensor."""
        layers: list[dict[str, int]] = [{} for _ in range(n_layers)]
        layer_params = [0] * n_layers
        inp: dict[str, int] = {}
        out: dict[str, int] = {}
        params = {"in": 0, "out": 0}
        names = set()
        for name, type_name, n_bytes, n_elements, dims in tensors:
            names.add(name)
            size = -(-n_bytes // ALIGNMENT) * ALIGNMENT if padded else n_bytes
            matrix = n_elements if dims > 1 else 0
            if name.startswith("blk."):
                i = int(name.split(".", 2)[1])
                layers[i][type_name] = layers[i].get(type_name, 0) + size
                layer_params[i] += matrix
            elif name.startswith(("token_embd", "rope_freqs")):
                inp[type_name] = inp.get(type_name, 0) + size
                params["in"] += matrix
            else:
                out[type_name] = out.get(type_name, 0) + size
                params["out"] += matrix
        return cls(
            layers=tuple(Part(b, p) for b, p in zip(layers, layer_params, strict=True)),
            input=Part(inp, params["in"]), output=Part(out, params["out"]),
            tied_embeddings="output.weight" not in names,
        )

    @classmethod
    def from_header(cls, header: GGUFHeader, n_layers: int) -> WeightsLayout:
        """The exact layout of a GGUF file."""
        return cls.from_tensors(
            ((t.name, _type_name(t.type_id), t.n_bytes, t.n_elements, len(t.shape)) for t in header.tensors), n_layers
        )

    @classmethod
    def from_shape(cls, shape: ModelShape, file_type: str, *, imatrix: bool = True) -> WeightsLayout:
        """The layout llama.cpp's quantizer will produce for this shape and file type."""
        return cls.from_tensors(
            ((t.name, t.type.name, t.n_bytes, t.n_elements, len(t.ne)) for t in mixed_tensors(shape, file_type,
                                                                                              imatrix=imatrix)),
            shape.layers,
        )


def _type_name(type_id: int) -> str:
    try:
        return gguf.GGMLQuantizationType(type_id).name
    except ValueError:
        return f"type{type_id}"
