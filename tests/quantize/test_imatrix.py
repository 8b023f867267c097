"""The importance matrix: accumulation, the ggml_tensor mirror, collection through cb_eval, the GGUF file format."""

from __future__ import annotations

import ctypes
from pathlib import Path

import gguf
import llama_cpp
import numpy as np
import pytest

from localr1.gguf_header import read_header
from quantize.errors import ImatrixError
from quantize.ladder.ggml_tensor import EXPECTED_SIZE, GGMLTensor, ggml, tensor_name
from quantize.ladder.imatrix import Imatrix, ImatrixCArray, ImatrixEntry, collect_imatrix
from quantize.ladder.imatrix_file import load_imatrix, save_imatrix
from quantize.runner import Runner


def test_ggml_tensor_mirror_matches_ggml_h() -> None:
    assert ctypes.sizeof(GGMLTensor) == EXPECTED_SIZE == 336
    offsets = {field[0]: getattr(GGMLTensor, field[0]).offset for field in GGMLTensor._fields_}
    assert offsets["ne"] == 16 and offsets["nb"] == 48 and offsets["op"] == 80
    assert offsets["src"] == 152 and offsets["data"] == 248 and offsets["name"] == 256
    lib = ggml()
    assert lib.op_name(0) == "NONE"
    assert "MUL_MAT" in {lib.op_name(i) for i in range(40)}


def test_tensor_name_drops_backend_decoration() -> None:
    tensor = GGMLTensor()
    tensor.name = b"CUDA0#blk.0.attn_k.weight#0"
    assert tensor_name(tensor) == "blk.0.attn_k.weight"
    tensor.name = b"blk.1.ffn_up.weight"
    assert tensor_name(tensor) == "blk.1.ffn_up.weight"


def test_dense_accumulation_sums_squares_per_column() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    imatrix = Imatrix()
    imatrix.add_dense("blk.0.w", a)
    imatrix.add_dense("blk.0.w", b)
    entry = imatrix.entries["blk.0.w"]
    both = np.concatenate([a, b]).astype(np.float64)
    np.testing.assert_allclose(entry.sums[0], (both**2).sum(axis=0), rtol=1e-6)
    assert entry.counts.tolist() == [10]
    np.testing.assert_allclose(entry.means(), (both**2).mean(axis=0), rtol=1e-5)


def test_batched_weights_map_activation_batches_to_matrices() -> None:
    x = np.ones((1, 4, 2, 3), dtype=np.float32)  # ne3=1, ne2=4 batches, 2 rows, 3 columns
    x[0, 1] *= 2
    imatrix = Imatrix()
    imatrix.add_dense("blk.0.w", x, weight_mats=(2, 1))  # the weight holds 2 matrices: batch i uses i % 2
    entry = imatrix.entries["blk.0.w"]
    assert entry.sums.shape == (2, 3)
    np.testing.assert_allclose(entry.sums[0], [4, 4, 4])  # batches 0 and 2: 2 rows of 1 each
    np.testing.assert_allclose(entry.sums[1], [10, 10, 10])  # batch 1 (2² x 2 rows) + batch 3 (1 x 2 rows)
    assert entry.counts.tolist() == [4, 4]


def test_expert_accumulation_follows_the_routing() -> None:
    x = np.arange(2 * 1 * 3, dtype=np.float32).reshape(2, 1, 3)  # 2 tokens, broadcast over the used experts
    ids = np.array([[0, 2], [2, 1]], dtype=np.int32)
    imatrix = Imatrix()
    imatrix.add_experts("blk.0.ffn_up_exps.weight", x, ids, n_expert=4)
    entry = imatrix.entries["blk.0.ffn_up_exps.weight"]
    assert entry.counts.tolist() == [1, 1, 2, 0]
    np.testing.assert_allclose(entry.sums[0], x[0, 0] ** 2)
    np.testing.assert_allclose(entry.sums[2], x[0, 0] ** 2 + x[1, 0] ** 2)
    means = entry.means().reshape(4, 3)
    np.testing.assert_allclose(means[3], [1, 1, 1])  # never routed: neutral weights, as llama.cpp does
    with pytest.raises(ImatrixError, match="expert id out of range"):
        imatrix.add_experts("blk.0.ffn_up_exps.weight", x, np.array([[0, 4], [1, 1]], dtype=np.int32), 4)


def test_inconsistent_shapes_and_non_finite_values_are_refused() -> None:
    imatrix = Imatrix()
    imatrix.add_dense("blk.0.w", np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ImatrixError, match="inconsistent activation shape"):
        imatrix.add_dense("blk.0.w", np.ones((2, 5), dtype=np.float32))
    imatrix.add_dense("blk.1.w", np.array([[np.inf, 1.0]], dtype=np.float32))
    with pytest.raises(ImatrixError, match=r"non-finite activations in blk\.1\.w"):
        imatrix.check_finite()


def test_file_round_trip_in_llama_cpp_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    imatrix = Imatrix(tokens=123, chunks=2, chunk_size=512, datasets=["calibration.json"])
    imatrix.add_dense("blk.0.attn_q.weight", rng.standard_normal((9, 8)).astype(np.float32))
    imatrix.add_experts("blk.0.ffn_up_exps.weight", rng.standard_normal((3, 1, 8)).astype(np.float32),
                        np.array([[0], [1], [1]], dtype=np.int32), 2)
    path = tmp_path / "imatrix.gguf"
    save_imatrix(imatrix, path)
    assert [p.name for p in tmp_path.iterdir()] == ["imatrix.gguf"]
    reader = gguf.GGUFReader(str(path))
    names = {t.name for t in reader.tensors}
    assert names == {"blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts",
                     "blk.0.ffn_up_exps.weight.in_sum2", "blk.0.ffn_up_exps.weight.counts"}
    field = reader.get_field("general.type")
    assert field is not None and field.contents() == "imatrix"
    loaded = load_imatrix(path)
    assert loaded.sha256() == imatrix.sha256()
    assert (loaded.tokens, loaded.chunks, loaded.chunk_size, loaded.datasets) == (123, 2, 512, ["calibration.json"])
    assert loaded.entries["blk.0.ffn_up_exps.weight"].counts.tolist() == [1, 2]


def test_loading_something_else_fails_clearly(tmp_path: Path, demo_path: Path) -> None:
    with pytest.raises(ImatrixError, match="importance matrix not found"):
        load_imatrix(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(ImatrixError, match="not a GGUF importance matrix"):
        load_imatrix(junk)


def test_c_array_is_null_terminated_and_keeps_the_data() -> None:
    imatrix = Imatrix()
    imatrix.entries["blk.0.b"] = ImatrixEntry(np.full((1, 3), 6.0), np.array([2]))
    imatrix.entries["blk.0.a"] = ImatrixEntry(np.full((1, 2), 4.0), np.array([4]))
    c = ImatrixCArray(imatrix)
    items = c.pointer
    assert items[0].name == b"blk.0.a" and items[0].size == 2 and items[0].data[1] == pytest.approx(1.0)
    assert items[1].name == b"blk.0.b" and items[1].size == 3 and items[1].data[2] == pytest.approx(3.0)
    assert items[2].name is None
    assert isinstance(c.array[0], llama_cpp.llama_model_imatrix_data)


@pytest.mark.model
def test_collection_through_cb_eval_covers_every_block_matrix(demo_path: Path) -> None:
    with Runner(demo_path, n_ctx=128) as runner:
        tokens = runner.tokenize("The importance matrix weighs each column by how much it is used. " * 8, False)
    tokens = tokens[:100]
    assert len(tokens) == 100
    imatrix = collect_imatrix(demo_path, [tokens, tokens[:40]], n_ctx=128)
    header = read_header(demo_path)
    matrices = {t.name: t.shape for t in header.tensors if t.name.startswith("blk.") and len(t.shape) == 2}
    assert set(imatrix.entries) == set(matrices)
    for name, entry in imatrix.entries.items():
        assert entry.sums.shape == (1, matrices[name][0])  # one value per input column (ne[0])
        assert entry.counts.tolist() == [140]
        assert np.all(entry.sums > 0)
    assert imatrix.tokens == 140 and imatrix.chunks == 2
