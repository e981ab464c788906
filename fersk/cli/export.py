"""``fersk export``: a model's networks as ONNX files, for ``--backend onnx``."""

from fersk import pretrained

from ._common import EXIT_OK, _Failure, _UsageError


def run(args):
    """Run ``fersk export``: export each model's networks to the ONNX cache.

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``fersk export`` as :func:`fersk.cli.main` parses
        them: ``models`` (bundled names or model folders; empty for the
        default model) and ``overwrite``.

    Returns
    -------
    status : int
        0; an unknown model is a usage error (status 2), a cache that
        cannot be written or a missing exporter a failure (status 1).

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["export", "fer2013_cnn"])  # doctest: +SKIP
    0
    """
    for name in args.models or [None]:
        try:
            paths = pretrained.export(name, overwrite=args.overwrite)
        except ValueError as exc:
            raise _UsageError(f"{name}: {exc}") from None
        except (OSError, ImportError) as exc:  # an unwritable cache, tf2onnx missing
            raise _Failure(f"{name or 'the default model'}: cannot export "
                           f"({type(exc).__name__}: {exc})") from None
        label = pretrained.info(name)["name"]
        for path in paths:
            print(f"{label}\t{path}")
    return EXIT_OK
