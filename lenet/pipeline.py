"""The slim LeNet over fine-tuning seeds: ``python -m lenet.pipeline [--seeds 0 1 ...] [--epochs 10]``.

Fine-tuning the slim LeNet is deterministic for one seed, but its accuracy moves from seed to seed by about as
much as the gap to the dense model. This command measures that spread once, outside the notebooks, for the
float32 model and torch's int8 (the range notebooks/08_does_pruning_compress.ipynb quotes); the notebooks re-run
one seed live. Lesson 11's table of every artifact (ONNX Runtime's included) comes from
docs/lesson11_seed_table.py, which runs the lesson's own cells. Introduced in
notebooks/11_shipping_a_pruned_model.ipynb.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from .checkpoints import pretrained
from .data import MNIST, load_mnist
from .shipping import prune_rows, quantize_int8, shrink
from .train import MAX_SEED, int_in
from .training import evaluate, fine_tune


def pipeline_accuracies(data: MNIST, seed: int, epochs: int = 10) -> tuple[float, float]:
    """Test accuracy of notebook 11's shipped LeNet fine-tuned with ``seed``: ``(float32, int8)``.

    The pipeline: ``prune_rows`` of the pretrained LeNet, ``shrink``, ``fine_tune(epochs, seed)``, then
    ``quantize_int8``. Fine-tuning runs on one thread, so a seed always gives the same weights.
    """
    slim = shrink(prune_rows(pretrained("cpu")))
    fine_tune(slim, data, epochs=epochs, seed=seed)
    return evaluate(slim, data), evaluate(quantize_int8(slim), data)


def main(argv: Sequence[str] | None = None) -> dict[int, tuple[float, float]]:
    """``python -m lenet.pipeline [--seeds 0 1 ...] [--epochs 10]``: the seed range quoted in notebook 08."""
    parser = argparse.ArgumentParser(prog="python -m lenet.pipeline", description=main.__doc__, allow_abbrev=False,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seeds", type=int_in(0, MAX_SEED), nargs="+", default=list(range(10)),
                        help="fine-tuning seeds, one row each")
    parser.add_argument("--epochs", type=int_in(0), default=10, help="fine-tuning epochs per seed (0: none)")
    args = parser.parse_args(argv)  # every argument is checked here, before the data loads
    data = load_mnist()
    start, n = time.time(), len(data.test_y)
    dense = evaluate(pretrained("cpu"), data)
    print(f"dense: {dense:.1%}; SlimLeNet{shrink(prune_rows(pretrained('cpu'))).widths} fine-tuned "
          f"{args.epochs} epochs per seed, {n} test images")
    print("| seed | slim float32 | slim int8 |\n|---|---|---|")
    table = {}
    for seed in args.seeds:
        table[seed] = pipeline_accuracies(data, seed, args.epochs)
        print(f"| {seed} | {table[seed][0]:.1%} | {table[seed][1]:.1%} |", flush=True)
    for i, label in enumerate(("float32", "int8")):
        accs = [a[i] for a in table.values()]
        print(f"{label}: min {min(accs):.1%}, max {max(accs):.1%}, mean {statistics.mean(accs):.2%}, "
              f"sd {statistics.stdev(accs) if len(accs) > 1 else 0.0:.2%}")
    print(f"({time.time() - start:.0f} s)")
    return table


if __name__ == "__main__":
    main()
