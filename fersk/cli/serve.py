"""``fersk serve``: the local web app (webcam page and JSON API).

Imported by :func:`fersk.cli.main` only when this command runs; the
argument parser (in :mod:`fersk.cli`) describes its options.  The app is
:func:`fersk.serve.create_app`'s.
"""

import sys

from ._common import EXIT_OK, _Failure, _UsageError

__all__ = ["run"]


def run(args):
    """Run ``fersk serve``: load the model once, then serve until Ctrl-C.

    The page at ``/`` takes the browser's webcam or a photo and draws each
    face's box and emotion; ``POST /api/predict`` answers an image with its
    faces as JSON; ``GET /api/health`` and ``GET /api/model`` describe the
    server (see :mod:`fersk.serve`).

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``fersk serve`` as :func:`fersk.cli.main` parses them
        (``model``, ``host``, ``port``, ``max_upload_mb``).

    Returns
    -------
    status : int
        0 when the server was stopped.

    Raises
    ------
    _UsageError
        An unknown model.
    _Failure
        Starlette or uvicorn missing (saying what to install), a port that
        cannot be bound.

    See Also
    --------
    fersk.serve.create_app : The application.

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["serve", "--port", "70000"])  # not a port: a usage error
    2

    From the shell, then open http://127.0.0.1:8000/ ::

        fersk serve --port 8000
        curl -s --data-binary @photo.jpg http://127.0.0.1:8000/api/predict
    """
    try:
        import uvicorn  # noqa: F401  (installed: the extra)

        from fersk.serve import _bind, _is_loopback, _run_on, create_app
        import starlette  # noqa: F401
    except ImportError:
        raise _Failure(
            "fersk serve needs Starlette and uvicorn: pip install 'fersk[serve]'"
        ) from None
    limit = int(args.max_upload_mb * 1024 * 1024)
    try:  # before the model loads: a port in use is said at once
        sock = _bind(args.host, args.port)
    except OSError as exc:
        raise _Failure(exc.strerror) from None
    with sock:
        try:
            app = create_app(args.model, max_upload_bytes=max(1, limit), backend=args.backend)
        except ValueError as exc:
            raise _UsageError(f"--model: {exc}") from None
        port = sock.getsockname()[1]  # --port 0: the one the system chose
        url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{port}/"
        print(f"fersk serve: model {app.state.model_info['name']} loaded; serving {url} "
              "(Ctrl-C to stop)", file=sys.stderr, flush=True)
        if not _is_loopback(sock.getsockname()[0]):  # 127.0.0.2 and ::ffff:127.0.0.1 too
            print(f"fersk serve: warning: --host {args.host} exposes the app beyond this "
                  "machine", file=sys.stderr, flush=True)
        _run_on(app, sock)
    return EXIT_OK
