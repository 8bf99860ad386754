"""A .pt2 program is sized node by node before anything runs (``dnn_eval.pt2_memory``).

Everything here only sizes programs (fake tensors) or loads ones that fit; the hostile files that ask for
terabytes are loaded in the guarded child of ``test_hostile_files`` (``hostile_programs``).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import hostile_programs as hp  # noqa: E402

from dnn_eval import loading  # noqa: E402
from dnn_eval.loading import DYNAMIC_CHECK_BATCHES, MAX_FIXED_BATCH, load_model  # noqa: E402
from dnn_eval.models import SHAPES, TRAINED, build_model  # noqa: E402
from dnn_eval.pt2_memory import MAX_ACTIVATION_BYTES_PER_SAMPLE, MAX_LIVE_BYTES_PER_SAMPLE, check_memory  # noqa: E402

MiB = 1 << 20


def _export(net, shape, batch=2, dynamic=False):
    ds = ({0: torch.export.Dim("batch")},) if dynamic else None
    return torch.export.export(net.eval(), (torch.rand((batch,) + tuple(shape)),), dynamic_shapes=ds)


@pytest.mark.parametrize("dynamic", [False, True])
def test_every_bundled_network_fits(dynamic):
    for name in TRAINED + SHAPES:
        shape = (3, 32, 32) if name in SHAPES else (1, 28, 28) if name == "vgg" else (1, 8, 8)
        ep = _export(build_model(name, shape, 10), shape, dynamic=dynamic)
        check_memory(ep, shape, DYNAMIC_CHECK_BATCHES if dynamic else (2,))


@pytest.mark.parametrize("name", SHAPES)
def test_resnets_on_imagenet_images_fit_at_the_largest_batch(name):
    """The caps' yardstick: ResNet-18 and -50 on 224x224 images, at MAX_FIXED_BATCH (sized, never run)."""
    shape = (3, 224, 224)
    ep = _export(build_model(name, shape, 1000), shape, dynamic=True)
    check_memory(ep, shape, (MAX_FIXED_BATCH,))
    assert DYNAMIC_CHECK_BATCHES == (2, MAX_FIXED_BATCH)


class _Alloc(torch.nn.Module):
    """One node allocating ``per_sample`` bytes per image of the batch (float32)."""

    def __init__(self, per_sample: int) -> None:
        super().__init__()
        self.n = per_sample // 4

    def forward(self, x):
        return x.flatten(1)[:, :10] + x.new_zeros((x.shape[0], self.n))[:, :10]


def test_node_cap_is_per_sample_of_the_batch_that_runs():
    ok = _export(_Alloc(MAX_ACTIVATION_BYTES_PER_SAMPLE), (1, 8, 8))
    check_memory(ok, (1, 8, 8), (2,))
    over = _export(_Alloc(MAX_ACTIVATION_BYTES_PER_SAMPLE + 4), (1, 8, 8))
    with pytest.raises(ValueError, match=r"node 'new_zeros' \(aten.new_zeros.default\) declares a tensor of "
                                         r"\[2, 4194305\] float32: 8388610 elements, 33554440 bytes, over the cap "
                                         r"of 33554432 bytes"):
        check_memory(over, (1, 8, 8), (2,))
    dyn = _export(_Alloc(MAX_ACTIVATION_BYTES_PER_SAMPLE + 4), (1, 8, 8), dynamic=True)  # symbolic metadata
    with pytest.raises(ValueError, match=r"node 'new_zeros' .* at batch 2 would output a tensor of \[2, 4194305\]"):
        check_memory(dyn, (1, 8, 8), DYNAMIC_CHECK_BATCHES)


def test_model_state_raises_the_cap():
    """An op on a weight may copy it: the cap adds the bytes of the program's weights and buffers."""
    class Copy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(3 * MAX_ACTIVATION_BYTES_PER_SAMPLE // 4))

        def forward(self, x):
            return x.flatten(1)[:, :10] + (self.w * 2)[:10]
    check_memory(_export(Copy(), (1, 8, 8)), (1, 8, 8), (2,))


def test_outputs_alive_at_once_are_capped():
    per_node = MAX_ACTIVATION_BYTES_PER_SAMPLE * 2 - MiB  # under the node cap at batch 2
    count = 2 * MAX_LIVE_BYTES_PER_SAMPLE // per_node + 1
    ep = torch.export.load(hp.export_buffer(hp._ManyAlive(per_node, count)))
    with pytest.raises(ValueError, match=rf"at node 'new_full_{count - 1}' .* the outputs alive at once would take "
                                         rf"{count * per_node} bytes, over the cap of {2 * MAX_LIVE_BYTES_PER_SAMPLE}"):
        check_memory(ep, (1, 8, 8), (2,))
    check_memory(torch.export.load(hp.export_buffer(hp._ManyAlive(per_node, count - 1))), (1, 8, 8), (2,))


def test_an_output_sized_by_the_data_is_refused():
    class NonZero(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :10] + x.nonzero().shape[0]
    with pytest.raises(ValueError, match=r"node 'nonzero' \(aten.nonzero.default\) cannot be sized without running"):
        check_memory(_export(NonZero(), (1, 8, 8)), (1, 8, 8), (2,))


def test_input_without_metadata_is_refused():
    ep = _export(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), (1, 8, 8))
    name = next(s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT")
    next(n for n in ep.graph.nodes if n.op == "placeholder" and n.name == name).meta.pop("val")
    with pytest.raises(ValueError, match=f"input '{name}' has no tensor metadata"):
        loading._pt2_signature(ep)


def test_a_program_under_the_caps_still_loads(tmp_path):
    p = hp.many_alive(tmp_path / "ok.pt2", 8 * MiB, 3)
    lm = load_model(str(p))
    assert lm.kind == "pt2" and lm.fixed_batch == 2
