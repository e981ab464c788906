"""One member of a bundled ensemble saved as a model of its own.

The stage 1 of ``sfew_two_stage.py`` is the network trained without SFEW,
kept as ``wild_ensemble``'s member ``no_sfew``; this script puts it back in
a folder with the ensemble's FaceCropper in front:

    python benchmarks/ensemble_member.py wild_ensemble no_sfew --out runs/wild/no_sfew/model
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (puts this checkout first on the path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a bundled ensemble or an ensemble's model folder")
    parser.add_argument("member", help="the member's name in the ensemble")
    parser.add_argument("--out", required=True, help="the model folder to write")
    args = parser.parse_args(argv)

    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    from fersk import pretrained

    pipe = pretrained.load(args.model, backend="keras")
    ensemble = pipe.steps[-1][1]
    members = dict(zip([name for name, _ in ensemble.estimators], ensemble.estimators_))
    if args.member not in members:
        parser.error(f"{args.model} has the members {sorted(members)}, not {args.member!r}")
    member = members[args.member]
    member = member.estimator if isinstance(member, FrozenEstimator) else member
    steps = member.steps if isinstance(member, Pipeline) else [("network", member)]
    pretrained.save(Pipeline([pipe.steps[0], *steps]), args.out, description=(
        f"{Path(args.model).name}'s member {args.member}, on its own "
        "(benchmarks/ensemble_member.py)"))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
