"""The `kfactor` command line: `kfactor <command> [--flags]`.

Commands (each a few lines over the public API):
  demo      procedural dSprites -> teacher -> factor networks -> report.json
  list      [SOURCES] table of the factors found (default: discovered ones)
  assemble  [SOURCES] --tasks=a,b --out=DIR: assemble, verify, save
  export    [SOURCES] --out=DIR: TF Serving SavedModel in DIR/<version>/
  evaluate  RUN_DIR | SOURCES --teacher=T.keras --out=DIR: report + figures
  serve     EXPORT_DIR [--port] [--model_name]: TF Serving's REST API (KServe)
"""

import dataclasses
import logging as std_logging
import os
import sys

from kfactor.factors.assembly import assemble
from kfactor.factors.assembly import check_assembly
from kfactor.factors.export import check_export
from kfactor.factors.export import export_for_serving
from kfactor.factors.plugins import factor_table
from kfactor.factors.plugins import litter_note
from kfactor.factors.plugins import load_factors
from kfactor.factors.saving import check_target

# TF's C++ start-up lines are kept quiet when `import kfactor` (which runs
# before this module) imports TensorFlow: kfactor/backend.py.
from kfactor.lab import demo
from kfactor.lab.demo import DATA_FIELDS
from kfactor.lab.demo import DemoConfig
from kfactor.lab.demo.tables import baselines_note
from kfactor.lab.evaluation import tensorboard
from kfactor.serving import protocol as serving_protocol
from kfactor.serving import server as serving
from kfactor.validation import NonFiniteError

from absl import app
from absl import flags
from absl import logging
from absl.logging import converter

FLAGS = flags.FLAGS

DEMO = DemoConfig()
flags.DEFINE_integer("num_train", DEMO.num_train, "demo: training images.")
flags.DEFINE_integer("num_test", DEMO.num_test, "demo: held-out test images.")
flags.DEFINE_integer("batch_size", DEMO.batch_size, "demo: batch size.")
flags.DEFINE_bool(
    "train_teacher",
    DEMO.train_teacher,
    "demo: train the teacher (default: load the pretrained one).",
)
flags.DEFINE_integer(
    "teacher_epochs",
    DEMO.teacher_epochs,
    "demo: teacher training epochs (with --train_teacher).",
)
flags.DEFINE_integer(
    "teacher_num_train",
    DEMO.teacher_num_train,
    "demo: teacher training images (drawn around the test split).",
)
flags.DEFINE_integer(
    "teacher_batch_size", DEMO.teacher_batch_size, "demo: teacher batch size."
)
flags.DEFINE_float(
    "teacher_learning_rate",
    DEMO.teacher_learning_rate,
    "demo: teacher peak learning rate (warm-up + cosine).",
)
flags.DEFINE_integer(
    "factor_epochs", DEMO.factor_epochs, "demo: factorization epochs."
)
flags.DEFINE_float(
    "learning_rate",
    DEMO.learning_rate,
    "demo: peak Adam learning rate of the factorization (warm-up + cosine).",
)
flags.DEFINE_list("widths", list(map(str, DEMO.widths)), "demo: conv widths.")
flags.DEFINE_integer("latent_dim", DEMO.latent_dim, "demo: code size.")
flags.DEFINE_string(
    "normalization",
    DEMO.normalization,
    "demo: encoder normalization, 'batch', 'keras_batch' or 'none'.",
)
flags.DEFINE_bool(
    "variational", DEMO.variational, "demo: Gaussian (VIB) task codes."
)
flags.DEFINE_float(
    "initial_log_var",
    DEMO.initial_log_var,
    "demo: initial log-variance of the Gaussian task codes.",
)
flags.DEFINE_float("beta", DEMO.beta, "demo: bottleneck weight (InfoMin).")
flags.DEFINE_bool(
    "common_from_teacher",
    DEMO.common_from_teacher,
    "demo: warm start: the common encoder starts as a copy of the "
    "teacher's backbone. A deviation from the paper, whose common network "
    "starts at random (and often differs from the teacher); no claim of "
    "the default report rests on it.",
)
flags.DEFINE_list(
    "infomax_layers",
    list(DEMO.infomax_layers),
    "demo: layers of the teacher and common encoder that InfoMax and the "
    "hint pair, bottom first (empty: the teacher latent and z_common).",
)
flags.DEFINE_string(
    "infomax_estimator",
    DEMO.infomax_estimator,
    "demo: in-batch InfoMax bound: infonce, dv, jsd or nwj (default: the "
    "Factorizer's).",
)
flags.DEFINE_float(
    "hint_weight",
    DEMO.hint_weight,
    "demo: hint weight (default: the Factorizer's).",
)
flags.DEFINE_float(
    "queue_weight",
    DEMO.queue_weight,
    "demo: queue InfoMax weight (default: the Factorizer's).",
)
flags.DEFINE_float(
    "adversary_weight",
    DEMO.adversary_weight,
    "demo: cross-task adversary weight (default: the Factorizer's).",
)
flags.DEFINE_string(
    "adversary_mode",
    DEMO.adversary_mode,
    "demo: confusion, reversal or class_means (default: the Factorizer's).",
)
flags.DEFINE_integer(
    "training_seed",
    DEMO.training_seed,
    "demo: seed of initialization, "
    "order and noise (default: --seed); the splits follow --seed.",
)
flags.DEFINE_list(
    "held_out",
    list(DEMO.held_out),
    "demo: factors left out of the factorization (no task factor, no "
    "label); the transfer table probes them from the frozen z_common.",
)
flags.DEFINE_integer(
    "single_task_epochs",
    DEMO.single_task_epochs,
    "demo: epochs of the single-task baseline (0: none).",
)
flags.DEFINE_integer(
    "kd_epochs", DEMO.kd_epochs, "demo: KD baseline epochs (0: none)."
)
flags.DEFINE_bool(
    "train_baselines",
    DEMO.train_baselines,
    "demo: train the KD and single-task baselines in the run (default: "
    "load the pretrained ones, trained with the default flags).",
)
flags.DEFINE_integer(
    "eval_train_examples",
    DEMO.eval_train_examples,
    "demo: train codes the metrics fit on.",
)
flags.DEFINE_integer(
    "eval_test_examples",
    DEMO.eval_test_examples,
    "demo: test codes the metrics score.",
)
flags.DEFINE_bool("dci", DEMO.dci, "demo: also compute DCI (about a minute).")
flags.DEFINE_bool(
    "project_codes",
    DEMO.project_codes,
    "demo: after training, keep each task code's mean to the directions "
    "its factor network reads (kfactor.training.project_task_codes); the "
    "single-task baseline's codes are projected the same way.",
)
flags.DEFINE_integer("seed", DEMO.seed, "demo: random seed.")
flags.DEFINE_string("output_dir", DEMO.output_dir, "Where to write.")
flags.DEFINE_integer(
    "verbose", DEMO.verbose, "Keras verbosity (1: progress bars)."
)
flags.DEFINE_list(
    "factors", [], "list/assemble/export/evaluate: factor directories."
)
flags.DEFINE_list("tasks", None, "assemble/export: tasks (default: all).")
flags.DEFINE_string("out", None, "assemble/export/evaluate: output dir.")
flags.DEFINE_bool("overwrite", False, "assemble/export/evaluate: replace.")
flags.DEFINE_integer("model_version", 1, "export: TF Serving version dir.")
flags.DEFINE_string("teacher", None, "evaluate: the teacher's .keras file.")
flags.DEFINE_string("kd_student", None, "evaluate: a KD student .keras file.")
flags.DEFINE_integer("port", serving.DEFAULT_PORT, "serve: the HTTP port.")
flags.DEFINE_string(
    "model_name",
    serving.DEFAULT_MODEL_NAME,
    "serve: <name> in /v1/models/<name>:predict.",
)
flags.DEFINE_integer(
    "max_batch_size",
    serving_protocol.MAX_BATCH_SIZE,
    "serve: the most images one predict request may hold.",
)


class CommandError(app.UsageError):
    """A command's bad flag or argument: `main` prints it as one line."""


def demo_command(args):
    try:
        config = DemoConfig(
            **{
                field.name: FLAGS[field.name].value
                for field in dataclasses.fields(DemoConfig)
            }
        )
        demo.check_config(config)
    except (ValueError, TypeError) as err:
        # Bad flags: one line, nothing written yet.
        raise CommandError(f"{type(err).__name__}: {err}") from err
    try:
        report = demo.run_demo(config)
    except NonFiniteError as err:
        # Training diverged: the message names the term and the fixes.
        raise CommandError(f"{type(err).__name__}: {err}") from err
    print(demo.format_table(report))
    if baselines_note(report):
        print(f"\n{baselines_note(report)}")
    print(
        f"\n{report['num_train_images']} train / {report['num_test_images']} "
        f"test images; {report['wall_seconds']:.0f} s in all; factorization "
        f"{report['factorization_images_per_second']:.0f} images/s; peak "
        f"memory {report['peak_rss_bytes'] / 2**30:.2f} GiB."
    )
    print(f"Report: {os.path.join(config.output_dir, demo.REPORT_FILE)}")
    print(
        f"Training curves: {tensorboard.command(report['tensorboard_logdir'])}"
    )


def _factor_errors(command):
    """Bad input to a factor command: one clear line, no traceback."""

    def wrapped(args):
        try:
            command(args)
        except (ValueError, TypeError, OSError) as err:
            raise CommandError(f"{type(err).__name__}: {err}") from err

    return wrapped


def _load(args):
    return load_factors(*args, *FLAGS.factors)


def _out():
    if not FLAGS.out:
        raise ValueError("Expected --out=DIR. Received: none.")
    return FLAGS.out


def _writable_out(directory):
    """`directory` if it may be written (checked before any work)."""
    return check_target(directory, FLAGS.overwrite)


@_factor_errors
def list_command(args):
    factors = _load(args)
    print(factor_table(factors))
    note = litter_note(factors)
    if note:
        print(f"\n{note}")


@_factor_errors
def assemble_command(args):
    out = _writable_out(_out())
    factors = _load(args)
    model = assemble(factors, tasks=FLAGS.tasks)
    for task, diff in check_assembly(model, factors).items():
        print(f"{task}: max |assembled - standalone| = {diff:.3g}")
    summary = export_for_serving(model, out, FLAGS.overwrite)
    print(f"Assembled {summary['tasks']} -> {summary['directory']}")


@_factor_errors
def export_command(args):
    if FLAGS.model_version < 1:
        raise ValueError(
            "Expected --model_version >= 1 (TF Serving serves positive "
            f"version folders). Received: {FLAGS.model_version}."
        )
    directory = _writable_out(os.path.join(_out(), str(FLAGS.model_version)))
    model = assemble(_load(args), tasks=FLAGS.tasks)
    summary = export_for_serving(model, directory, FLAGS.overwrite)
    for name, outputs in summary["signatures"].items():
        print(f"signature {name}: images -> {', '.join(outputs)}")
    print(f"max |reloaded - in memory| = {check_export(directory, model):.3g}")
    print(f"{summary['num_parameters']} parameters -> {directory}")


@_factor_errors
def evaluate_command(args):
    sources = [*args, *FLAGS.factors]
    models = dict(teacher=FLAGS.teacher, kd_student=FLAGS.kd_student)
    data = {name: FLAGS[name].value for name in DATA_FIELDS}
    if len(sources) == 1 and demo.is_run_dir(sources[0]):
        changed = {k: v for k, v in data.items() if FLAGS[k].present}
        report = demo.evaluate_run(
            sources[0],
            FLAGS.out,
            **models,
            overwrite=FLAGS.overwrite,
            **changed,
        )
    else:
        report = demo.evaluate_sources(
            sources,
            config=DemoConfig(**data),
            output_dir=FLAGS.out,
            overwrite=FLAGS.overwrite,
            **models,
        )
    print(demo.format_table(report))
    if "compared_with_run" in report:
        diffs = report["compared_with_run"]
        print(
            f"\nmax |evaluate - demo|: accuracy "
            f"{diffs['max_abs_accuracy_diff']:.3g}, scores "
            f"{diffs['max_abs_score_diff']:.3g}"
        )
    print(f"Report: {os.path.dirname(report['figures']['accuracy'])}")


@_factor_errors
def serve_command(args):
    if len(args) != 1:
        raise ValueError(
            "Expected one EXPORT_DIR (kfactor export --out). Received: "
            f"{args or 'none'}."
        )
    try:
        serving.serve(
            args[0],
            port=FLAGS.port,
            model_name=FLAGS.model_name,
            max_batch_size=FLAGS.max_batch_size,
        )
    except ImportError as err:  # no [serve] extra: its install command
        raise CommandError(str(err)) from err


COMMANDS = {
    "demo": demo_command,
    "list": list_command,
    "assemble": assemble_command,
    "export": export_command,
    "evaluate": evaluate_command,
    "serve": serve_command,
}
#: Commands that take factor sources as positional arguments.
TAKES_SOURCES = ("list", "assemble", "export", "evaluate", "serve")


def run(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        raise app.UsageError(
            f"Expected a command: kfactor {{{'|'.join(COMMANDS)}}} [--flags]. "
            f"Received: {' '.join(argv[1:]) or 'nothing'}. "
            "See `kfactor --helpfull`."
        )
    if len(argv) > 2 and argv[1] not in TAKES_SOURCES:
        raise app.UsageError(
            f"Unexpected arguments {argv[2:]}: options are flags, e.g. "
            "--num_train=1000."
        )
    set_log_levels()
    COMMANDS[argv[1]](argv[2:])


def set_log_levels():
    """kfactor's progress lines at INFO; TensorFlow's Python log from WARNING.

    TF logs both through the "tensorflow" logger and through absl (its
    SavedModel writer), and resets absl's logger level on the way, so
    absl's handler filters instead. An explicit `--verbosity` applies to
    all of them, so `--verbosity=0` shows TF's INFO lines too.
    """
    handler = logging.get_absl_handler()
    if FLAGS["verbosity"].present:
        handler.removeFilter(only_kfactor_info)
        tf_level = converter.absl_to_standard(min(FLAGS.verbosity, 1))
    else:
        logging.set_verbosity(logging.INFO)
        handler.addFilter(only_kfactor_info)
        tf_level = std_logging.WARNING
    std_logging.getLogger("tensorflow").setLevel(tf_level)


def only_kfactor_info(record):
    """A log filter: WARNING and above, and kfactor's own INFO lines."""
    name = record.name
    return (
        record.levelno >= std_logging.WARNING
        or name == "kfactor"
        or name.startswith("kfactor.")
    )


#: The flags each command reads: `kfactor <command> --help` lists them.
COMMAND_FLAGS = {
    "demo": tuple(field.name for field in dataclasses.fields(DemoConfig)),
    "list": ("factors",),
    "assemble": ("factors", "tasks", "out", "overwrite"),
    "export": ("factors", "tasks", "out", "overwrite", "model_version"),
    "evaluate": (
        "factors",
        "teacher",
        "kd_student",
        "out",
        "overwrite",
        *DATA_FIELDS,
    ),
    "serve": ("port", "model_name", "max_batch_size"),
}
HELP_ARGS = ("--help", "-help", "--helpshort", "-helpshort", "-?")


def command_help(command=None):
    """The text of `kfactor [command] --help`.

    Args:
        command: a key of `COMMANDS`, or None for the list of commands.
    """
    if command is None:
        return (
            f"{__doc__}\n`kfactor <command> --help` lists a command's flags; "
            "--helpfull lists every flag (absl's and TF's too)."
        )
    usage = next(
        line.split(maxsplit=1)[1]
        for line in __doc__.splitlines()
        if line.split()[:1] == [command]
    )
    lines = [f"kfactor {command}: {usage}", "", "flags:"]
    for name in COMMAND_FLAGS[command]:
        flag = FLAGS[name]
        prefix = "[no]" if flag.flag_type() == "bool" else ""
        lines.append(f"  --{prefix}{name}: {flag.help}")
        lines.append(f"    (default: {flag.default_as_str})")
    lines.append(
        "  --verbosity: absl's log level; given, it also sets TF's C++ and "
        "Python logs\n    (0: INFO, -1: WARNING, -2: ERROR; default: "
        "kfactor's INFO lines only)"
    )
    return "\n".join(lines)


def parse_flags(argv):
    """absl's flag parsing, but `--help` lists the command's own flags."""
    if any(arg in HELP_ARGS for arg in argv[1:]):
        command = next((arg for arg in argv[1:] if arg in COMMANDS), None)
        print(command_help(command))
        sys.exit(0)
    return app.parse_flags_with_usage(argv)


def run_one_line_errors(argv):
    """`run`, printing a command's `CommandError` as one line, exit 1."""
    try:
        run(argv)
    except CommandError as err:
        message = " ".join(str(err).split())
        print(f"kfactor {argv[1]}: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    app.run(run_one_line_errors, flags_parser=parse_flags)


if __name__ == "__main__":
    main()


__all__ = [
    "COMMANDS",
    "COMMAND_FLAGS",
    "CommandError",
    "command_help",
    "main",
    "run",
    "run_one_line_errors",
]
