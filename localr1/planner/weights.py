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
    """Bytes, matrix weights (prompt FLOPs) and matrix rows (a decode step pays a cost per row besides the
    bytes) of one part of the model, each by ggml type name (kernels differ by type)."""

    bytes_by_type: dict[str, int] = field(default_factory=dict)
    params_by_type: dict[str, int] = field(default_factory=dict)
    rows_by_type: dict[str, int] = field(default_factory=dict)

    @cached_property
    def total(self) -> int:
        """All bytes of the part."""
        return sum(self.bytes_by_type.values())

    @cached_property
    def params(self) -> int:
        """All matrix weights of the part."""
        return sum(self.params_by_type.values())


@dataclass(frozen=True)
class WeightsLayout:
    """A model's weights: repeating layers, input (token embedding, rope factors) and output (norm, head)."""

    layers: tuple[Part, ...]
    input: Part
    output: Part
    tied_embeddings: bool
    last_layer_attention: Part | None = None  # the last layer without its FFN (None: not known, the whole layer)

    @property
    def prompt_last_layer(self) -> Part:
        """What a prompt computes of the last layer: llama.cpp runs its FFN only for the tokens whose logits are
        wanted (a prompt's last), so a prompt token costs the last layer's attention alone."""
        return self.last_layer_attention or self.layers[-1]

    @cached_property
    def total(self) -> int:
        """Bytes of all tensor data (with GGUF's alignment padding)."""
        return sum(p.total for p in self.layers) + self.input.total + self.output.total

    @cached_property
    def streamed_output(self) -> Part:
        """What the output step reads per token: the head, or the whole embedding when it is tied."""
        if not self.tied_embeddings:
            return self.output
        return Part(_merged(self.output.bytes_by_type, self.input.bytes_by_type),
                    _merged(self.output.params_by_type, self.input.params_by_type),
                    _merged(self.output.rows_by_type, self.input.rows_by_type))

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
    def from_tensors(cls, tensors: Iterable[tuple[str, str, int, int, int, int]], n_layers: int,
                     *, padded: bool = True) -> WeightsLayout:
        """From (name, ggml type name, bytes, elements, dims, row length) of every tensor."""
        parts = [_PartSums() for _ in range(n_layers + 3)]  # the layers, input, output, the last layer's attention
        names = set()
        for name, type_name, n_bytes, n_elements, dims, row_length in tensors:
            names.add(name)
            if name.startswith("blk."):
                layer = int(name.split(".", 2)[1])
                in_parts = [parts[layer]]
                if layer == n_layers - 1 and not name.split(".", 2)[2].startswith("ffn_"):
                    in_parts.append(parts[n_layers + 2])
            else:
                in_parts = [parts[n_layers if name.startswith(("token_embd", "rope_freqs")) else n_layers + 1]]
            for part in in_parts:
                part.add(type_name, -(-n_bytes // ALIGNMENT) * ALIGNMENT if padded else n_bytes,
                         n_elements if dims > 1 else 0, n_elements // max(row_length, 1) if dims > 1 else 0)
        built = [Part(p.bytes_by_type, p.params_by_type, p.rows_by_type) for p in parts]
        return cls(layers=tuple(built[:n_layers]), input=built[n_layers], output=built[n_layers + 1],
                   tied_embeddings="output.weight" not in names,
                   last_layer_attention=built[n_layers + 2] if n_layers else None)

    @classmethod
    def from_header(cls, header: GGUFHeader, n_layers: int) -> WeightsLayout:
        """The exact layout of a GGUF file."""
        return cls.from_tensors(
            ((t.name, _type_name(t.type_id), t.n_bytes, t.n_elements, len(t.shape), t.shape[0] if t.shape else 1)
             for t in header.tensors), n_layers
        )

    @classmethod
    def from_shape(cls, shape: ModelShape, file_type: str, *, imatrix: bool = True) -> WeightsLayout:
        """The layout llama.cpp's quantizer will produce for this shape and file type."""
        return cls.from_tensors(
            ((t.name, t.type.name, t.n_bytes, t.n_elements, len(t.ne), t.ne[0])
             for t in mixed_tensors(shape, file_type, imatrix=imatrix)),
            shape.layers,
        )


@dataclass
class _PartSums:
    """A part's sums while the tensors are read."""

    bytes_by_type: dict[str, int] = field(default_factory=dict)
    params_by_type: dict[str, int] = field(default_factory=dict)
    rows_by_type: dict[str, int] = field(default_factory=dict)

    def add(self, type_name: str, size: int, params: int, rows: int) -> None:
        self.bytes_by_type[type_name] = self.bytes_by_type.get(type_name, 0) + size
        if params:
            self.params_by_type[type_name] = self.params_by_type.get(type_name, 0) + params
        if rows:
            self.rows_by_type[type_name] = self.rows_by_type.get(type_name, 0) + rows


def _merged(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {name: a.get(name, 0) + b.get(name, 0) for name in a.keys() | b.keys()}


def _type_name(type_id: int) -> str:
    try:
        return gguf.GGMLQuantizationType(type_id).name
    except ValueError:
        return f"type{type_id}"
