"""A bundled ensemble re-saved with each member predicting from two views
(the centre and its mirror), as a distillation teacher.

Ten views a member cost five times the network passes of two, and two views
scored as well as ten on PublicTest for the bundled networks
(``RESULTS.md``, "The default's test-time views"); the teacher's
probabilities over the whole in-the-wild mixture (36,404 faces) then take
minutes, not most of an hour, on 2 CPU cores.

    python benchmarks/two_view_teacher.py fer2013_ensemble --out runs/student/fer2013_ensemble_2v
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (puts this checkout first on the path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a bundled ensemble or an ensemble's model folder")
    parser.add_argument("--out", required=True, help="the model folder to write")
    args = parser.parse_args(argv)

    from fersk import pretrained

    pipe = pretrained.load(args.model, backend="keras")
    ensemble = pipe.steps[-1][1]

    def network(member):  # a member is a network or a Pipeline ending in one
        return member.steps[-1][1] if hasattr(member, "steps") else member

    for member in [m for _, m in ensemble.estimators] + list(ensemble.estimators_):
        network(member).set_params(test_time_crops="center", test_time_flip=True)
    pretrained.save(pipe, args.out, description=(
        f"{Path(args.model).name}, each member at two views (centre + mirror): a "
        "distillation teacher (benchmarks/two_view_teacher.py)"))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
