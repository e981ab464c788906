"""A local web app: the browser's webcam or a photo, classified live.

:func:`create_app` builds a Starlette application around one fitted model
(loaded once): a page that takes the browser's webcam (``getUserMedia``) or
an uploaded photo and draws every face's box and emotion, and a JSON REST
API.  :func:`serve` runs it with uvicorn; ``fersk serve`` is the command.
Both need the ``serve`` extra: ``pip install 'fersk[serve]'``.

REST API (all answers JSON):

- ``GET /api/health``: ``{"status": "ok"}``.
- ``GET /api/model``: the model's name, classes, class names, detector,
  backend (what runs its networks) and upload limit.
- ``POST /api/predict``: an image as the raw request body (any
  ``Content-Type``, e.g. ``image/jpeg``) or as the one file of a
  ``multipart/form-data`` form: JPEG, PNG, WebP, GIF, BMP or TIFF.  The
  answer lists every face (``box``, ``kind``, ``label``, ``class``,
  ``probabilities``); ``kind`` is ``"detected"``, or ``"precropped"`` for
  an image of at most the model's ``precropped_max_side`` pixels a side
  (64 for the bundled models), taken whole as one face crop without
  looking for a face.  A bad upload gets a 4xx answer
  ``{"error": {"status": ..., "code": ..., "message": ...}}``: 400 empty or
  not an image, 403 posted from another site's page (its ``Origin``, which
  must name the ``Host`` or the ``X-Forwarded-Host``), 413 larger than the
  limit.

Served on a loopback address (the default), requests whose ``Host`` is not
this machine's (localhost, 127.0.0.1, ::1) get a 403: a site cannot reach
the app by pointing its own name at 127.0.0.1 (DNS rebinding).

Uploads are read into memory only (nothing is written to disk) and refused
as soon as they pass the limit, or unread from their ``Content-Length``
when the client waits for ``100 Continue`` (see :func:`create_app`).
"""

import email.parser
import email.policy
import errno
import io
import numbers
import os
import socket
import threading
import time
from importlib import resources

from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["create_app", "serve"]

_SERVE_HINT = "pip install 'fersk[serve]' (starlette and uvicorn)"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Decoded images larger than this are refused (a small file may hold a
# huge image: the decompression-bomb guard).
_MAX_PIXELS = 40_000_000
# Bytes past the upload limit read (and dropped) before answering 413.
_DRAIN_BYTES = 256 * 1024 * 1024
# The formats uploads may be: photos' and screenshots' (JPEG's opener also
# reads phones' multi-picture MPO files).  Pillow reads many more (EPS runs
# Ghostscript), none of which a web upload needs.
_UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


def _import_starlette():
    try:
        import starlette  # noqa: F401
    except ImportError:
        raise ImportError(f"fersk serve needs Starlette: {_SERVE_HINT}.") from None


class _UploadError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status, code, message):
    from starlette.responses import JSONResponse

    return JSONResponse(
        {"error": {"status": status, "code": code, "message": message}}, status_code=status
    )


def _too_large(total, limit, more=""):
    return _UploadError(413, "too_large", f"the upload is {more}{total} bytes; the limit is "
                        f"{limit} bytes (fersk serve --max-upload-mb).")


async def _read_body(request, limit):
    """The request body, refused (413) once it passes ``limit`` bytes.

    A ``Content-Length`` past the limit is refused before a byte is read
    when the client waits for ``100 Continue`` before sending (curl does
    for uploads over 1 MiB; nothing is sent then) or when the body would
    pass the limit by more than ``_DRAIN_BYTES``.  Otherwise what comes
    past the limit is read and dropped (never kept) up to ``_DRAIN_BYTES``:
    a client already sending its upload would see the connection reset
    instead of the JSON answer.
    """
    declared = request.headers.get("content-length")
    declared = int(declared) if declared is not None and declared.isdigit() else None
    if declared is not None and declared > limit and (
        request.headers.get("expect", "").lower() == "100-continue"
        or declared > limit + _DRAIN_BYTES
    ):
        raise _too_large(declared, limit)
    chunks, size, cut = [], 0, False
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks = None
            if size > limit + _DRAIN_BYTES:
                cut = True
                break
            continue
        chunks.append(chunk)
    if chunks is None or (declared is not None and declared > limit):
        total = declared if declared is not None else size
        raise _too_large(total, limit, "more than " if cut and declared is None else "")
    return b"".join(chunks)


def _form_file(body, content_type):
    """The bytes of the one file (or first field) of a multipart form,
    parsed in memory (Starlette's own parser spools large files to disk).
    A form of several files is refused: one would be answered, the others
    passed over without a word."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise _UploadError(400, "bad_form", "the multipart form could not be parsed.")
    parts = list(message.iter_parts())
    files = [p for p in parts if p.get_filename() is not None]
    if len(files) > 1:
        raise _UploadError(
            400, "several_files",
            f"the form holds {len(files)} files; send one image a request.",
        )
    chosen = (files or parts or [None])[0]
    if chosen is None:
        raise _UploadError(400, "empty", "the form holds no file: send the image as a file field.")
    return chosen.get_payload(decode=True) or b""


def _decode_image(data):
    """An uploaded file as a uint8 grey or RGB array (fersk's reading rule)."""
    from PIL import Image, UnidentifiedImageError

    from ._image_files import open_image, pil_to_uint8

    if not data:
        raise _UploadError(400, "empty", "the upload is empty: send an image file.")
    try:
        with Image.open(io.BytesIO(data), formats=_UPLOAD_FORMATS) as im:
            if im.width * im.height > _MAX_PIXELS:
                raise _UploadError(
                    413, "too_many_pixels",
                    f"the image is {im.width}x{im.height} pixels; at most {_MAX_PIXELS} "
                    "pixels are accepted."
                )
            # A multi-picture JPEG (MPO: a phone's gain map or preview) is
            # one photo; its primary picture is what fersk predict reads.
            # is_animated stops at the second frame (n_frames walks every page).
            if im.format != "MPO" and getattr(im, "is_animated", False):
                # Its first frame alone would be an answer for part of it.
                raise _UploadError(
                    400, "several_frames",
                    "the image holds several frames (an animation or pages): send one "
                    "still image a request (fersk predict FILE classifies every frame)."
                )
            return pil_to_uint8(open_image(im))
    except _UploadError:
        raise
    except Image.DecompressionBombError:  # Pillow's own limit, above fersk's: too large too
        raise _UploadError(
            413, "too_many_pixels",
            f"the image has more than {_MAX_PIXELS} pixels, the most accepted."
        ) from None
    except UnidentifiedImageError:
        raise _UploadError(
            400, "not_an_image",
            "the upload is not an image of a format fersk serve takes (JPEG, PNG, WebP, GIF, "
            "BMP or TIFF)."
        ) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001  (Pillow's plugins fail in many ways on bad files)
        # OSError, SyntaxError... and a damaged GIF's IndexError, a TIFF's
        # TypeError: the upload's fault, not a server error (a 500 before).
        raise _UploadError(
            400, "corrupt_image", f"the image could not be decoded ({type(exc).__name__}: {exc})."
        ) from None


def _same_origin(headers):
    """Whether a request comes from no web page (curl, scripts: no
    ``Origin``) or from a page of this server: another site's page the
    user visits must not make the server work.

    The page's ``host:port`` may be the ``Host`` or the first
    ``X-Forwarded-Host`` (a reverse proxy that rewrites ``Host``): another
    site's page cannot send that header without a CORS preflight, which
    this server never approves."""
    from urllib.parse import urlsplit

    origin = headers.get("origin")
    if origin is None:
        return True
    forwarded = headers.get("x-forwarded-host", "").split(",")[0].strip()
    ours = {headers.get("host", "").lower(), forwarded.lower()} - {""}
    return urlsplit(origin).netloc.lower() in ours


class _LocalHostsOnly:
    """ASGI middleware answering 403 to a request whose ``Host`` is not
    this machine's (localhost, 127.0.0.1, ::1): the app bound to loopback
    is then out of reach of DNS rebinding (a site's name re-pointed at
    127.0.0.1 lets its page read the answers)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host and not _is_local_host(host):
                answer = _error(403, "bad_host",
                                f"Host {host!r}: the server answers this machine's names only.")
                return await answer(scope, receive, send)
        return await self.app(scope, receive, send)


def _is_local_host(host):
    """Whether a ``Host`` header (name or address, with or without a port)
    names this machine."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:  # a bad port or brackets
        return False
    name = name.removesuffix(".")  # "localhost." is the same name, fully qualified
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _faces_json(model, class_names, image):
    """predict_faces on one image, as the API's JSON (no face: no entry)."""
    from .face import predict_faces

    classes = list(model.classes_)
    faces = []
    for rec in predict_faces(model, [image]):
        if rec["box"] is None:  # no face: no record, not a label
            continue
        k = classes.index(rec["label"])
        r, c, h, w = rec["box"]
        faces.append({
            "box": {"row": r, "col": c, "height": h, "width": w},
            # 'detected', or 'precropped': a small image (the cropper's
            # precropped_max_side) taken whole as a face crop, unsearched
            "kind": rec["kind"],
            "label": class_names[k],
            "class": rec["label"].item() if hasattr(rec["label"], "item") else rec["label"],
            "confidence": rec["confidence"],
            "probabilities": {
                name: round(float(p), 6) for name, p in zip(class_names, rec["proba"])
            },
        })
    return faces


#: The constraints of the arguments create_app and serve share.
_APP_CONSTRAINTS = {
    # Which names and folders are models, fersk.pretrained says.
    "model": [str, os.PathLike, Pipeline, None],
    "max_upload_bytes": [Interval(numbers.Integral, 1, None, closed="left")],
    "backend": [StrOptions({"auto", "keras", "onnx", "onnx-int8"})],
}


@validate_params(
    {**_APP_CONSTRAINTS, "model_name": [str, None], "local_hosts_only": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def create_app(model=None, *, max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES, model_name=None,
               backend="auto", local_hosts_only=False):
    """The web app: the live page and the JSON API around one model.

    Parameters
    ----------
    model : str, os.PathLike, sklearn.pipeline.Pipeline or None, default=None
        A bundled model's name or a model folder (loaded here, once, by
        :func:`fersk.pretrained.load`; None is the default bundled model),
        or a fitted Pipeline that starts with a :class:`~fersk.FaceCropper`
        (its classes named as its model folder names them when
        :func:`fersk.pretrained.load` gave it, else FER-2013's for 0..6).
    max_upload_bytes : int, default=10485760
        Largest upload accepted (10 MiB); larger ones get a 413 JSON error
        and are not kept.  One whose ``Content-Length`` passes the limit is
        answered before its body is read when the client waits for ``100
        Continue`` (curl, for uploads over 1 MiB) or it passes the limit by
        more than 256 MiB; otherwise the rest of it is read and dropped, so
        that a client already sending sees the answer, not a reset
        connection.
    model_name : str or None, default=None
        The name ``GET /api/model`` reports (default: the bundled model's
        name, the folder, or the pipeline's class name).
    backend : {"auto", "keras", "onnx", "onnx-int8"}, default="auto"
        What runs a model given by name or folder, as
        :func:`fersk.pretrained.load` takes it (ignored for a Pipeline).
    local_hosts_only : bool, default=False
        Answer 403 (``bad_host``) to a request whose ``Host`` is not this
        machine's (localhost, 127.0.0.1, ::1), against DNS rebinding.
        :func:`serve` and ``fersk serve`` add this check themselves when
        bound to a loopback address; set it when another server runs the
        app on one (``uvicorn`` with your own factory), which cannot know
        where it is bound.

    Returns
    -------
    app : starlette.applications.Starlette
        An ASGI application: run it with uvicorn (:func:`serve`) or test it
        with ``starlette.testclient.TestClient``.

    Raises
    ------
    ImportError
        Starlette is not installed (saying what to install).
    ValueError
        An unknown model, a pipeline that does not start with a
        FaceCropper, or a non-positive ``max_upload_bytes``.

    Examples
    --------
    >>> from starlette.testclient import TestClient  # doctest: +SKIP
    >>> from fersk.serve import create_app
    >>> client = TestClient(create_app())  # doctest: +SKIP
    >>> client.get("/api/health").json()  # doctest: +SKIP
    {'status': 'ok'}
    >>> with open("photo.jpg", "rb") as f:  # doctest: +SKIP
    ...     faces = client.post("/api/predict", content=f.read()).json()["faces"]
    """
    _import_starlette()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    from . import pretrained
    from ._labels import class_names_of
    from .pretrained._loading import _backend_of
    from .live import _check_model

    limit = int(max_upload_bytes)
    if isinstance(model, Pipeline):
        _check_model(model)
        pipeline, name, description = model, model_name or type(model).__name__, ""
        class_names = class_names_of(model)
    else:
        meta = pretrained.info(model)
        pipeline = pretrained.load(model, backend=backend)
        _check_model(pipeline)
        name = model_name or (meta["name"] if model is None else str(model))
        description = meta.get("description", "")
        class_names = class_names_of(pipeline)  # a folder may name none; in classes_ order
    cropper = pipeline.steps[0][1]
    detector = cropper.detector if isinstance(cropper.detector, (str, type(None))) else "callable"
    model_info = {
        "name": name,
        "description": description,
        "classes": [c.item() if hasattr(c, "item") else c for c in pipeline.classes_],
        "class_names": class_names,
        "steps": [step for step, _ in pipeline.steps],
        "detector": detector,
        "backend": _backend_of(pipeline),
        "max_upload_bytes": limit,
    }
    page = resources.files("fersk").joinpath("static", "live.html").read_text("utf-8")
    # One upload at a time is decoded and classified, in a worker thread
    # (never on the event loop): Keras and the detector are not re-entrant,
    # and a waiting request holds only its bytes (at most the limit), not a
    # decoded image (up to 40 MP x 3 bytes each).
    lock = threading.Lock()

    def decode_and_predict(body, content_type):
        # The form is parsed before the lock: a body of many parts took the
        # parser half a minute, every other request waiting behind it.
        if content_type.lower().startswith("multipart/"):
            body = _form_file(body, content_type)
        with lock:
            image = _decode_image(body)
            return image.shape, _faces_json(pipeline, class_names, image)

    async def index(request):
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def health(request):
        return JSONResponse({"status": "ok"})

    async def model_route(request):
        return JSONResponse(model_info)

    async def predict_route(request):
        start = time.perf_counter()
        if not _same_origin(request.headers):
            return _error(403, "cross_origin", "predictions are not taken from other sites' "
                          "pages: post from this server's page, or without an Origin header.")
        try:
            body = await _read_body(request, limit)
            shape, faces = await run_in_threadpool(
                decode_and_predict, body, request.headers.get("content-type", ""))
        except _UploadError as exc:
            return _error(exc.status, exc.code, exc.message)
        return JSONResponse({
            "width": int(shape[1]),
            "height": int(shape[0]),
            "faces": faces,
            "model": name,
            "seconds": round(time.perf_counter() - start, 4),
        })

    async def not_found(request, exc):
        answer = _error(exc.status_code, "not_found" if exc.status_code == 404 else "http_error",
                        f"{request.method} {request.url.path}: {exc.detail}")
        answer.headers.update(exc.headers or {})  # a 405's Allow
        return answer

    async def server_error(request, exc):
        # What failed stays in the server's log (Starlette re-raises it for
        # uvicorn to log): its text may name local paths.
        return _error(500, "internal_error",
                      "the server failed on this request; the server's log says why.")

    from starlette.exceptions import HTTPException

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/api/health", health, methods=["GET"]),
            Route("/api/model", model_route, methods=["GET"]),
            Route("/api/predict", predict_route, methods=["POST"]),
        ],
        exception_handlers={HTTPException: not_found, 500: server_error},
        middleware=[Middleware(_LocalHostsOnly)] if local_hosts_only else None,
    )
    app.state.model = pipeline
    app.state.model_info = model_info
    return app


@validate_params(
    {
        **_APP_CONSTRAINTS,
        "host": [str],
        "port": [Interval(numbers.Integral, 0, 65535, closed="both")],
        "log_level": [StrOptions({"critical", "error", "warning", "info", "debug", "trace"})],
    },
    prefer_skip_nested_validation=True,
)
def serve(model=None, *, host="127.0.0.1", port=8000, max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES,
          log_level="warning", backend="auto"):
    """Run the web app with uvicorn until interrupted.

    Parameters
    ----------
    model : str, os.PathLike, sklearn.pipeline.Pipeline or None, default=None
        As :func:`create_app` takes it.
    host : str, default="127.0.0.1"
        Address to bind: this machine only by default.  ``"0.0.0.0"``
        exposes the app (and its model) to the network.
    port : int, default=8000
        TCP port, 0 to 65535 (0 lets the system choose).
    max_upload_bytes : int, default=10485760
        Largest upload accepted.
    log_level : {"critical", "error", "warning", "info", "debug", "trace"}, \
            default="warning"
        uvicorn's log level ("info" logs every request).
    backend : {"auto", "keras", "onnx", "onnx-int8"}, default="auto"
        As :func:`create_app` takes it.

    Returns
    -------
    None
        When the server stops (Ctrl-C).

    Raises
    ------
    OSError
        ``host:port`` cannot be bound (a port in use, an address not of
        this machine), said before the model loads.
    ImportError, ValueError
        As :func:`create_app` raises them.

    Examples
    --------
    >>> from fersk.serve import serve
    >>> serve(port=8000)  # doctest: +SKIP
    """
    _import_starlette()
    try:
        import uvicorn
    except ImportError:
        raise ImportError(f"fersk serve needs uvicorn: {_SERVE_HINT}.") from None
    sock = _bind(host, port)
    try:
        _run_on(create_app(model, max_upload_bytes=max_upload_bytes, backend=backend), sock,
                log_level)
    finally:
        sock.close()


def _is_loopback(host):
    """Whether the address ``host`` is this machine's loopback (IPv4-mapped
    IPv6 ``::ffff:127.0.0.1`` too, which ``ipaddress`` does not count)."""
    import ipaddress

    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def _run_on(app, sock, log_level="warning"):
    """Serve ``app`` with uvicorn on the bound socket ``sock`` until Ctrl-C;
    bound to loopback, it answers requests for this machine's names only."""
    import uvicorn

    if _is_loopback(sock.getsockname()[0]):
        app = _LocalHostsOnly(app)

    try:
        uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False)).run(
            sockets=[sock])
    except KeyboardInterrupt:
        pass


def _bind(host, port):
    """A TCP socket bound to ``host:port`` (0: a free port the system picks;
    ``sock.getsockname()[1]`` tells which), for uvicorn to listen on.

    Bound here, before the model loads, so that a port in use is an
    :class:`OSError` at once: uvicorn binding it itself ends the process
    (``sys.exit(3)``) after the model has loaded.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = " (is the port in use?)" if exc.errno == errno.EADDRINUSE else ""
        raise OSError(exc.errno, f"cannot serve on {host}:{port}: {exc.strerror or exc}{hint}") \
            from None
    sock.set_inheritable(True)  # as uvicorn's own socket, for reloaders and workers
    return sock
