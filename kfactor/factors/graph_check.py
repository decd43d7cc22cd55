"""Checks a factor's SavedModel graph against an allowlist of ops, unloaded.

A SavedModel is a program (TensorFlow's security guidance says so): a factor
directory from someone else can hold file, network or process ops
(`WriteFile`, `ReadFile`, `MatchingFiles`, `SaveV2`, `PrintV2` to a file,
`DebugIdentity`, `PyFunc`, ...) that run when it is called, or even when it
is loaded (a resource's initializer). So `SavedFactor` (and `load_factors`)
read `saved_model.pb` as a protocol buffer, never executing it, and refuse
any op outside `ALLOWED_OPS` before `tf.saved_model.load` sees the file.

Which functions are checked against what:

- every function the object graph can call (its concrete functions, the
  functions they call through `StatefulPartitionedCall`, `If`, `While`,
  ... attributes, and their registered gradients): `ALLOWED_OPS` only;
- every other function of the library (the checkpoint save/restore
  functions that `tf.saved_model.save` writes, which `tf.saved_model.load`
  never calls) and the top-level graph: `ALLOWED_OPS | SAVER_OPS`.

`ALLOWED_OPS` is `DERIVED_OPS` (the ops of every factor kfactor saves:
SimpleConv64 with each normalization, variational and not, Wide ResNet,
`keras.applications` MobileNetV2 and ResNet50, under float32,
mixed_float16 and mixed_bfloat16; `tests/factors/test_graph_check.py` saves them
again and checks the list) plus `EXTRA_OPS`, pure math, NN, array and
control-flow ops of other stock Keras layers. None reads or writes a file,
the network or a process.

The opt-outs: `allow_ops=[...]` adds op names to the allowlist;
`trust_factor=True` skips the check (for a factor you made or trust).
"""

import collections
import os

from kfactor.factors import manifest as manifest_lib

from tensorflow.core.protobuf import saved_model_pb2

#: The ops of the functions of every factor kfactor saves (module doc).
DERIVED_OPS = frozenset(
    {
        "AddV2",
        "BiasAdd",
        "Cast",
        "Const",
        "Conv2D",
        "DepthwiseConv2dNative",
        "Identity",
        "LeakyRelu",
        "MatMul",
        "MaxPool",
        "Mean",
        "Mul",
        "NoOp",
        "Pack",
        "Pad",
        "ReadVariableOp",
        "Relu",
        "Relu6",
        "Reshape",
        "Rsqrt",
        "Shape",
        "Split",
        "Squeeze",
        "StatefulPartitionedCall",
        "StridedSlice",
        "Sub",
    }
)
#: Pure ops of other stock Keras layers and of `tf.cond`/`tf.while_loop`.
EXTRA_OPS = frozenset(
    {
        # The input checks of a loaded SavedFactor, which a factor saved
        # again (a frozen common factor under a new task) carries along.
        "All",
        "Assert",
        "IsFinite",
        # Element-wise math and reductions.
        "Abs",
        "Add",
        "AddN",
        "ArgMax",
        "ArgMin",
        "BiasAddV1",
        "Ceil",
        "ClipByValue",
        "Cos",
        "Elu",
        "Equal",
        "Erf",
        "Exp",
        "Floor",
        "FloorDiv",
        "FloorMod",
        "Gelu",
        "Greater",
        "GreaterEqual",
        "IdentityN",
        "Less",
        "LessEqual",
        "Log",
        "Log1p",
        "LogSoftmax",
        "LogicalAnd",
        "LogicalNot",
        "LogicalOr",
        "Max",
        "Maximum",
        "Min",
        "Minimum",
        "Neg",
        "NotEqual",
        "Pow",
        "Prod",
        "RealDiv",
        "Reciprocal",
        "Round",
        "Selu",
        "Sigmoid",
        "Sign",
        "Sin",
        "Softmax",
        "Softplus",
        "Softsign",
        "Sqrt",
        "Square",
        "SquaredDifference",
        "Sum",
        "Tanh",
        # NN.
        "AvgPool",
        "AvgPool3D",
        "Conv2DBackpropInput",
        "Conv3D",
        "FusedBatchNormV3",
        "MaxPool3D",
        "ResizeBilinear",
        "ResizeNearestNeighbor",
        # Array.
        "BroadcastTo",
        "ConcatV2",
        "DepthToSpace",
        "ExpandDims",
        "Fill",
        "GatherV2",
        "MirrorPad",
        "OnesLike",
        "PadV2",
        "Range",
        "Rank",
        "Select",
        "SelectV2",
        "Size",
        "Slice",
        "SpaceToDepth",
        "StopGradient",
        "Tile",
        "Transpose",
        "Unpack",
        "ZerosLike",
        # Control flow.
        "If",
        "PartitionedCall",
        "StatelessIf",
        "StatelessWhile",
        "While",
    }
)
ALLOWED_OPS = DERIVED_OPS | EXTRA_OPS
#: The ops of the checkpoint functions and the top-level graph that
#: `tf.saved_model.save` writes into every SavedModel; refused in any
#: function the loaded object can call.
SAVER_OPS = frozenset(
    {
        "AssignVariableOp",
        "DisableCopyOnRead",
        "MergeV2Checkpoints",
        "Placeholder",
        "RestoreV2",
        "SaveV2",
        "ShardedFilename",
        "StaticRegexFullMatch",
        "StringJoin",
        "VarHandleOp",
    }
)
TOP_LEVEL = "<top-level graph>"


class UntrustedFactorError(manifest_lib.FactorFormatError):
    """A factor's graph holds ops outside the allowlist (`graph_check`)."""


def read_saved_model(saved_model_dir):
    """The `SavedModel` protocol buffer of `saved_model_dir` (not run)."""
    path = os.path.join(saved_model_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    try:
        with open(path, "rb") as f:
            proto.ParseFromString(f.read())
    except Exception as err:  # protobuf raises DecodeError and others.
        raise manifest_lib.FactorFormatError(
            f"Expected a SavedModel protocol buffer at {path}. Received: "
            f"{type(err).__name__}: {str(err)[:200]}. Fix: the artefact is "
            "corrupt; re-save or re-install the factor."
        ) from err
    return proto


def _called_functions(node, library):
    """The library functions a node calls: as its op or in its attributes."""
    called = {node.op} & library
    for attr in node.attr.values():
        if attr.HasField("func"):
            called.add(attr.func.name)
        called.update(f.name for f in attr.list.func)
    return called & library


def _reachable(roots, calls):
    seen, stack = set(), list(roots)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(calls.get(name, ()))
    return seen


def graph_ops(proto):
    """`({function: ops}, reachable)` of a SavedModel protocol buffer.

    `reachable` holds the functions the loaded object can call (module
    doc); the top-level graph's ops are under `TOP_LEVEL`.
    """
    ops, calls = collections.defaultdict(set), collections.defaultdict(set)
    reachable = set()
    for meta_graph in proto.meta_graphs:
        graph = meta_graph.graph_def
        library = {f.signature.name for f in graph.library.function}
        for node in graph.node:
            ops[TOP_LEVEL].add(node.op)
        for function in graph.library.function:
            name = function.signature.name
            for node in function.node_def:
                ops[name].add(node.op)
                calls[name] |= _called_functions(node, library)
        for gradient in graph.library.gradient:
            calls[gradient.function_name].add(gradient.gradient_func)
        roots = set(meta_graph.object_graph_def.concrete_functions)
        reachable |= _reachable(roots & library, calls)
        for name in library:
            ops[name] -= library  # A call of a function is no op.
        ops[TOP_LEVEL] -= library
    return dict(ops), reachable


def refused_ops(proto, allow_ops=()):
    """Sorted `(function, op)` pairs of `proto` outside the allowlist."""
    ops, reachable = graph_ops(proto)
    allowed = ALLOWED_OPS | frozenset(allow_ops)
    refused = []
    for function, names in ops.items():
        permitted = allowed if function in reachable else allowed | SAVER_OPS
        refused += [(function, op) for op in names - permitted]
    return sorted(refused)


def _check_allow_ops(allow_ops):
    if isinstance(allow_ops, str) or not all(
        isinstance(op, str) for op in allow_ops
    ):
        raise TypeError(
            "Expected allow_ops as a list of op names, e.g. "
            f"allow_ops=['Erfinv']. Received: allow_ops={allow_ops!r}"
        )
    return tuple(allow_ops)


def check_factor_graph(directory, allow_ops=(), trust_factor=False):
    """Raises `UntrustedFactorError` if the factor's graph has a refused op.

    Reads `directory/saved_model/saved_model.pb` without running it.

    Args:
        directory: a factor directory (`kfactor.json` + `saved_model/`).
        allow_ops: op names allowed beyond `ALLOWED_OPS`.
        trust_factor: skip the check.

    Example:

    >>> check_factor_graph("saved_factors/dsprites/common")  # doctest: +SKIP
    """
    allow_ops = _check_allow_ops(allow_ops)
    if trust_factor:
        return
    saved_model = os.path.join(directory, manifest_lib.SAVED_MODEL_DIR)
    refused = refused_ops(read_saved_model(saved_model), allow_ops)
    if not refused:
        return
    listed = ", ".join(f"{op!r} in function {fn!r}" for fn, op in refused)
    ops = sorted({op for _, op in refused})
    raise UntrustedFactorError(
        f"Expected the graph of factor {directory} to hold only the math, "
        "NN, array and control-flow ops kfactor's own factors use "
        f"(kfactor.factors.graph_check.ALLOWED_OPS). Received: {listed}. "
        "A SavedModel is a program: such ops can read or write files or "
        "run processes when the factor is called. Nothing was loaded or "
        "run. Fix: use factors from a source you trust; if you trust this "
        f"one, pass allow_ops={ops} or trust_factor=True."
    )


__all__ = [
    "ALLOWED_OPS",
    "DERIVED_OPS",
    "EXTRA_OPS",
    "SAVER_OPS",
    "TOP_LEVEL",
    "UntrustedFactorError",
    "check_factor_graph",
    "graph_ops",
    "read_saved_model",
    "refused_ops",
]
