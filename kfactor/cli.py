"""The `kfactor` command line: `kfactor <command> [--flags]`.

Commands (each a few lines over the public API):
  demo   procedural dSprites -> teacher -> factor networks -> report.json
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# ruff: noqa: E402
from absl import app
from absl import flags
from absl import logging

FLAGS = flags.FLAGS

flags.DEFINE_integer("num_train", 30000, "demo: training images.")
flags.DEFINE_integer("num_test", 5000, "demo: held-out test images.")
flags.DEFINE_integer("batch_size", 128, "demo: batch size.")
flags.DEFINE_integer("teacher_epochs", 4, "demo: teacher training epochs.")
flags.DEFINE_integer("factor_epochs", 4, "demo: factorization epochs.")
flags.DEFINE_float("learning_rate", 1e-3, "demo: Adam learning rate.")
flags.DEFINE_list(
    "widths", ["16", "16", "32", "32", "64", "64"], "demo: conv widths."
)
flags.DEFINE_integer("kd_epochs", 4, "demo: KD baseline epochs (0: none).")
flags.DEFINE_integer(
    "eval_train_examples", 10000, "demo: train codes the metrics fit on."
)
flags.DEFINE_integer(
    "eval_test_examples", 5000, "demo: test codes the metrics score."
)
flags.DEFINE_bool("dci", False, "demo: also compute DCI (about a minute).")
flags.DEFINE_integer("seed", 0, "demo: random seed.")
flags.DEFINE_string("output_dir", "kfactor_runs/demo", "Where to write.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity (1: progress bars).")


def demo_command(args):
    from kfactor import demo

    config = demo.DemoConfig(
        num_train=FLAGS.num_train,
        num_test=FLAGS.num_test,
        batch_size=FLAGS.batch_size,
        teacher_epochs=FLAGS.teacher_epochs,
        factor_epochs=FLAGS.factor_epochs,
        learning_rate=FLAGS.learning_rate,
        widths=tuple(int(w) for w in FLAGS.widths),
        kd_epochs=FLAGS.kd_epochs,
        eval_train_examples=FLAGS.eval_train_examples,
        eval_test_examples=FLAGS.eval_test_examples,
        dci=FLAGS.dci,
        seed=FLAGS.seed,
        output_dir=FLAGS.output_dir,
        verbose=FLAGS.verbose,
    )
    report = demo.run_demo(config)
    print(demo.format_table(report))
    print(
        f"\n{report['num_train_images']} train / {report['num_test_images']} "
        f"test images; {report['wall_seconds']:.0f} s in all; factorization "
        f"{report['factorization_images_per_second']:.0f} images/s."
    )
    print(f"Report: {os.path.join(config.output_dir, demo.REPORT_FILE)}")


COMMANDS = {"demo": demo_command}


def run(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        raise app.UsageError(
            f"Expected a command: kfactor {{{'|'.join(COMMANDS)}}} [--flags]. "
            f"Received: {' '.join(argv[1:]) or 'nothing'}. "
            "See `kfactor --helpfull`."
        )
    if len(argv) > 2:
        raise app.UsageError(
            f"Unexpected arguments {argv[2:]}: options are flags, e.g. "
            "--num_train=1000."
        )
    logging.set_verbosity(logging.INFO)
    COMMANDS[argv[1]](argv[2:])


def main():
    app.run(run)


if __name__ == "__main__":
    main()
