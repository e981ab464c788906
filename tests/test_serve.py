"""``fersk serve``: the REST API through Starlette's test client, a real
server in a subprocess, and the page in a real headless Chromium fed a
fake camera (a .y4m video of faces the test writes).

The browser test needs Chromium (Debian: ``apt-get install chromium``,
which ``.ci/run`` does) and Playwright's Python package (the test extra);
it drives the system Chromium (Playwright's own browser download is not
needed) and skips, saying why, where either is missing.  Set
``FERSK_SCREENSHOT=path.png`` to keep a screenshot of the page.
"""

import base64
import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

pytest.importorskip("starlette", reason="fersk serve needs the serve extra (starlette)")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx (the test extra)")

from fersk import pretrained  # noqa: E402

EMOTIONS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
LIMIT = 300_000  # bytes: the upload limit of the test app


def _jpeg(image, quality=90):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette 1.x would rather have httpx2
        from starlette.testclient import TestClient

    from fersk.serve import create_app

    with TestClient(create_app(max_upload_bytes=LIMIT)) as client:
        yield client


def test_health_and_model(client):
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    assert info["name"] == pretrained.DEFAULT_MODEL
    assert set(info["class_names"]) == EMOTIONS and info["classes"] == list(range(7))
    # MTCNN, on ONNX Runtime where the default loads its int8 graphs (backend "auto")
    assert info["max_upload_bytes"] == LIMIT and info["detector"] in ("mtcnn", "mtcnn-onnx")
    # What runs it, said: the int8 graph it ships where onnxruntime is installed.
    assert info["backend"] == ("onnx-int8" if info["detector"] == "mtcnn-onnx" else "keras")


def test_predict_raw_body_and_form(client):
    photo = _jpeg(data.astronaut())
    raw = client.post("/api/predict", content=photo, headers={"content-type": "image/jpeg"})
    form = client.post("/api/predict", files={"image": ("astronaut.jpg", photo, "image/jpeg")})
    for answer in (raw, form):
        assert answer.status_code == 200
        body = answer.json()
        assert (body["width"], body["height"]) == (512, 512)
        (face,) = body["faces"]
        assert face["label"] == "happy" and face["class"] == 3
        assert set(face["probabilities"]) == EMOTIONS
        assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-4)
        box = face["box"]
        assert 40 < box["row"] < 90 and 160 < box["col"] < 210 and box["height"] > 80
    assert raw.json()["faces"] == form.json()["faces"]
    # Two files in one form: refused (the second was passed over without a word)
    two = client.post("/api/predict", files=[("a", ("a.jpg", photo, "image/jpeg")),
                                             ("b", ("b.jpg", photo, "image/jpeg"))])
    assert two.status_code == 400 and two.json()["error"]["code"] == "several_files"
    # An animation or a multi-page TIFF: refused (its first frame was the
    # answer for the whole file, without a word)
    face = Image.fromarray(data.astronaut()[::4, ::4])  # under the test app's upload limit
    for fmt in ("GIF", "TIFF"):
        buf = io.BytesIO()
        face.save(buf, format=fmt, save_all=True, append_images=[face.rotate(90)])
        several = client.post("/api/predict", content=buf.getvalue())
        assert several.status_code == 400, fmt
        assert several.json()["error"]["code"] == "several_frames"
        assert "several frames" in several.json()["error"]["message"]



def test_a_phone_jpeg_with_a_second_picture_is_classified_by_its_primary(client):
    """A multi-picture JPEG (MPO: phones' gain maps and previews, stereo
    cameras) was refused as "several frames" with advice that did not hold
    (fersk predict reads its primary picture).  Its primary picture is
    classified, as fersk predict does."""
    from PIL import Image

    face = Image.fromarray(data.astronaut())
    buf = io.BytesIO()
    face.save(buf, format="MPO", save_all=True, append_images=[face.resize((128, 128))])
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert im.format == "MPO" and im.n_frames == 2
    answer = client.post("/api/predict", content=buf.getvalue())
    assert answer.status_code == 200, answer.text
    single = client.post("/api/predict", content=_jpeg(data.astronaut())).json()["faces"]
    faces = answer.json()["faces"]
    assert len(faces) == 1 and faces[0]["label"] == single[0]["label"]

def test_two_faces_and_no_face(client):
    two = np.concatenate([data.astronaut(), data.astronaut()[:, ::-1]], axis=1)
    faces = client.post("/api/predict", content=_jpeg(two)).json()["faces"]
    assert len(faces) == 2 and all(f["label"] in EMOTIONS for f in faces)
    # No face: no record (not a label).
    blank = client.post("/api/predict", content=_png(np.full((200, 300), 128, np.uint8)))
    assert blank.status_code == 200 and blank.json()["faces"] == []


@pytest.mark.parametrize("payload,status,code", [
    (b"just some text\n", 400, "not_an_image"),
    (b"", 400, "empty"),
    (_jpeg(data.astronaut())[:3000], 400, "corrupt_image"),  # a JPEG cut short
    (b"x" * (LIMIT + 1), 413, "too_large"),
], ids=["text", "empty", "truncated_jpeg", "oversized"])
def test_bad_uploads_are_json_errors(client, payload, status, code):
    answer = client.post("/api/predict", content=payload)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["status"] == status and error["code"] == code and error["message"]
    assert client.get("/api/health").json() == {"status": "ok"}  # still answering


def _damaged_gif():
    """A GIF whose second image descriptor is cut off: Pillow's GIF reader
    raises IndexError counting its frames."""
    buffer = io.BytesIO()
    Image.new("L", (48, 48)).save(buffer, format="GIF")
    return buffer.getvalue().rstrip(b";") + b"," + bytes(8) + b"\x00"


def _damaged_tiff():
    """A TIFF whose next-page offset points into its pixels: TypeError in
    Pillow's TIFF reader."""
    buffer = io.BytesIO()
    Image.new("L", (48, 48)).save(buffer, format="TIFF")
    raw = bytearray(buffer.getvalue())
    offset = int.from_bytes(raw[4:8], "little")
    entries = int.from_bytes(raw[offset:offset + 2], "little")
    raw[offset + 2 + 12 * entries:offset + 6 + 12 * entries] = (200).to_bytes(4, "little")
    return bytes(raw)


@pytest.mark.parametrize("payload", [_damaged_gif(), _damaged_tiff()], ids=["gif", "tiff"])
def test_damaged_gif_and_tiff_are_corrupt_images_not_server_errors(client, payload):
    """Pillow's GIF and TIFF readers raise IndexError and TypeError on these
    (not OSError): the server answered 500 internal_error.  (The TIFF names a
    second page: is_animated, which stops there, may call it several frames.)"""
    answer = client.post("/api/predict", content=payload)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] in {"corrupt_image", "several_frames"}


def test_ipv4_mapped_and_other_loopback_addresses_count_as_loopback():
    """::ffff:127.0.0.1 is loopback, which ipaddress does not say: a server
    bound there went without the Host check; the CLI warned that 127.0.0.2
    exposed the app beyond this machine."""
    from fersk.serve import _is_loopback

    assert [_is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1")] \
        == [True] * 4
    assert [_is_loopback(h) for h in ("0.0.0.0", "192.168.1.2", "::ffff:10.0.0.1", "::",
                                       "localhost")] == [False] * 5


@pytest.mark.parametrize("size", [(7000, 7000), (20000, 10000)])
def test_images_of_too_many_pixels_are_413(client, size):
    """Above fersk's limit, and above Pillow's own (a DecompressionBombError,
    which was answered 400 corrupt_image)."""
    buffer = io.BytesIO()
    Image.new("1", size).save(buffer, format="PNG")  # tiny file, huge image
    answer = client.post("/api/predict", content=buffer.getvalue())
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_many_pixels"


def test_bad_form_uploads(client):
    text = client.post("/api/predict", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert text.status_code == 400 and text.json()["error"]["code"] == "not_an_image"
    truncated = _jpeg(data.astronaut())[:3000]
    corrupt = client.post("/api/predict", files={"file": ("cut.jpg", truncated, "image/jpeg")})
    assert corrupt.status_code == 400 and corrupt.json()["error"]["code"] == "corrupt_image"
    big = client.post("/api/predict", files={"file": ("big.bin", b"\0" * (LIMIT + 10), "x/y")})
    assert big.status_code == 413 and "limit" in big.json()["error"]["message"]


def test_a_declared_upload_past_the_limit_is_refused_unread():
    """Content-Length past the limit: answered 413 before any byte is read
    when the client waits for 100 Continue (curl) or the body would pass the
    drain allowance (it read and dropped all 50 MiB first); a client already
    sending without Expect is still drained, so that it sees the answer."""
    import asyncio

    from fersk.serve import create_app

    app = create_app(max_upload_bytes=1024)

    def post(total, expect):
        pulled, sent = 0, []

        async def receive():
            nonlocal pulled
            chunk = min(64 * 1024, total - pulled)
            pulled += chunk
            return {"type": "http.request", "body": b"\0" * chunk, "more_body": pulled < total}

        async def send(message):
            sent.append(message)

        headers = [(b"content-length", str(total).encode()), (b"host", b"x")]
        if expect:
            headers.append((b"expect", b"100-continue"))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/api/predict",
                 "raw_path": b"/api/predict", "query_string": b"", "root_path": "",
                 "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        asyncio.run(app(scope, receive, send))
        return sent[0]["status"], pulled

    assert post(50 * 1024 * 1024, expect=True) == (413, 0)
    assert post(300 * 1024 * 1024, expect=False) == (413, 0)  # past the 256 MiB allowance
    assert post(2 * 1024 * 1024, expect=False) == (413, 2 * 1024 * 1024)  # drained


def test_unknown_routes_are_json(client):
    # the codes docs/live.rst's table gives
    assert client.get("/nope").json()["error"] == {
        "status": 404, "code": "not_found", "message": "GET /nope: Not Found"}
    assert client.get("/api/predict").json()["error"] == {
        "status": 405, "code": "http_error", "message": "GET /api/predict: Method Not Allowed"}


def test_a_405_says_what_is_allowed(client):
    answer = client.get("/api/predict")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"


def test_each_face_says_how_it_was_found(client):
    """An image of at most 64 px a side is taken whole as a face crop (the
    cropper's precropped_max_side): a blank icon was answered as a face
    indistinguishable from a detected one."""
    (face,) = client.post("/api/predict", content=_jpeg(data.astronaut())).json()["faces"]
    assert face["kind"] == "detected"
    (icon,) = client.post("/api/predict",
                          content=_png(np.full((64, 64), 128, np.uint8))).json()["faces"]
    assert icon["kind"] == "precropped"
    assert icon["box"] == {"row": 0.0, "col": 0.0, "height": 64.0, "width": 64.0}


@pytest.mark.parametrize("kind", ["TGA", "PCX", "EPS"])
def test_uploads_of_other_formats_are_refused(client, kind):
    """Pillow reads many formats (EPS runs Ghostscript); uploads are photos'
    and screenshots' formats only."""
    buffer = io.BytesIO()
    if kind == "EPS":  # no Ghostscript needed to write one's header
        buffer.write(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n%%EOF\n")
    else:
        Image.fromarray(data.astronaut()[::2, ::2]).save(buffer, format=kind)
    answer = client.post("/api/predict", content=buffer.getvalue())
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "not_an_image"


def test_a_failure_is_logged_not_told(client, monkeypatch):
    """A 500 answered the exception's text (paths, internals) to any client."""
    import fersk.serve
    from starlette.testclient import TestClient

    def broken(*args):
        raise RuntimeError("secret /home/someone/models")

    monkeypatch.setattr(fersk.serve, "_faces_json", broken)
    quiet = TestClient(client.app, raise_server_exceptions=False)
    answer = quiet.post("/api/predict", content=_jpeg(data.astronaut()))
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal_error"
    assert "secret" not in answer.text and "RuntimeError" not in answer.text
    with pytest.raises(RuntimeError, match="secret"):  # raised on, for the server to log
        TestClient(client.app).post("/api/predict", content=_jpeg(data.astronaut()))


def test_uploads_are_decoded_one_at_a_time_off_the_event_loop(client, monkeypatch):
    """Uploads were decoded on the event loop and then waited for the
    prediction lock holding their decoded images (up to 120 MB each, from a
    small PNG): memory grew with every request in flight."""
    import asyncio
    import threading

    import httpx

    import fersk.serve

    decode, held, most, on_loop = fersk.serve._decode_image, [0], [0], []
    guard = threading.Lock()

    def counting_decode(data):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # a worker thread: no running loop
            pass
        image = decode(data)
        with guard:
            held[0] += 1
            most[0] = max(most[0], held[0])
        return image

    def slow_predict(model, class_names, image):
        time.sleep(0.3)  # the others arrive meanwhile
        with guard:
            held[0] -= 1
        return []

    monkeypatch.setattr(fersk.serve, "_decode_image", counting_decode)
    monkeypatch.setattr(fersk.serve, "_faces_json", slow_predict)
    photo = _jpeg(data.astronaut())

    async def post_four():
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(*[http.post("/api/predict", content=photo)
                                          for _ in range(4)])

    answers = asyncio.run(post_four())
    assert [a.status_code for a in answers] == [200] * 4
    assert most[0] == 1 and not on_loop


def test_other_sites_pages_cannot_post(client):
    """A page of another site the user visits posted to the local server
    (text/plain needs no CORS preflight): the server did the work."""
    photo = _png(np.full((80, 80), 128, np.uint8))
    for origin in ("http://evil.example", "null"):
        answer = client.post("/api/predict", content=photo, headers={"origin": origin})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "cross_origin"
    # the server's own page, and clients that are no page
    assert client.post("/api/predict", content=photo,
                       headers={"origin": "http://testserver"}).status_code == 200
    assert client.post("/api/predict", content=photo).status_code == 200


def test_behind_a_proxy_the_pages_own_posts_are_taken(client):
    """A reverse proxy that rewrites Host (nginx's default proxy_pass, ngrok
    --host-header=rewrite): every photo and frame of the page was refused
    as cross_origin.  Its X-Forwarded-Host names the page's host; another
    site's page cannot send that header without a CORS preflight."""
    photo = _png(np.full((80, 80), 128, np.uint8))
    page = {"host": "127.0.0.1:8000", "origin": "https://faces.example.org"}
    for forwarded in ("faces.example.org", "Faces.Example.org, 10.0.0.1"):
        answer = client.post("/api/predict", content=photo,
                             headers={**page, "x-forwarded-host": forwarded})
        assert answer.status_code == 200, forwarded
    for headers in (page, {**page, "x-forwarded-host": "evil.example"},
                    {**page, "x-forwarded-host": "10.0.0.1, faces.example.org"},
                    {"origin": "null", "x-forwarded-host": ""}):
        answer = client.post("/api/predict", content=photo, headers=headers)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "cross_origin"


@pytest.mark.parametrize("host,status", [
    ("127.0.0.1:8000", 200), ("localhost:8000", 200), ("[::1]:8000", 200), ("localhost", 200),
    ("localhost.:8000", 200), ("localhost.", 200),  # the fully qualified name
    ("attacker.example:8000", 403), ("127.0.0.1.attacker.example", 403), ("[::1", 403),
    ("0.0.0.0:8000", 403), ("localhost..:8000", 403),
])
def test_bound_to_loopback_only_local_host_names_are_answered(client, host, status):
    """DNS rebinding: a site's name re-pointed at 127.0.0.1 let its page read
    /api/model (a local path with --model PATH)."""
    from starlette.testclient import TestClient

    from fersk.serve import _LocalHostsOnly

    answer = TestClient(_LocalHostsOnly(client.app)).get("/api/model", headers={"host": host})
    assert answer.status_code == status
    if status == 403:
        assert answer.json()["error"]["code"] == "bad_host"


def test_create_app_checks_the_host_when_asked(client):
    """local_hosts_only: the same Host check for an app another server runs
    on loopback (until 2026-12-07 only serve() and fersk serve added it)."""
    from starlette.testclient import TestClient

    from fersk.serve import create_app

    model = client.app.state.model
    with TestClient(create_app(model, local_hosts_only=True)) as checked:
        answer = checked.get("/api/model", headers={"host": "attacker.example:8000"})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "bad_host"
        assert checked.get("/api/model", headers={"host": "localhost:8000"}).status_code == 200
    with TestClient(create_app(model)) as open_app:  # the default: any Host (behind a proxy)
        assert open_app.get("/api/model", headers={"host": "faces.example.org"}).status_code == 200
    with pytest.raises(ValueError, match="'local_hosts_only' parameter"):
        create_app(model, local_hosts_only="yes")

def test_a_model_folder_without_class_names(tmp_path):
    """class_names is optional in pipeline.json (load() names the classes
    itself); the app answered 500 for every photo with a face."""
    import fersk
    from starlette.testclient import TestClient

    from fersk.serve import create_app

    folder = tmp_path / "nonames"
    shutil.copytree(Path(fersk.__file__).parent / "models" / "fer2013_cnn", folder)
    spec = json.loads((folder / "pipeline.json").read_text())
    del spec["class_names"]
    (folder / "pipeline.json").write_text(json.dumps(spec))
    with TestClient(create_app(folder)) as client:
        assert set(client.get("/api/model").json()["class_names"]) == EMOTIONS
        answer = client.post("/api/predict", content=_jpeg(data.astronaut()))
    assert answer.status_code == 200 and answer.json()["faces"][0]["label"] == "happy"


def test_a_loaded_pipeline_keeps_its_folders_class_names(tmp_path):
    # A model of a user's folders (codes in folder order, 4 = neutral), saved
    # with its names: handed over as a loaded Pipeline, the app, the stream
    # and a re-save named its classes in FER-2013's order instead.
    from starlette.testclient import TestClient

    from fersk.live import FaceStream
    from fersk.serve import create_app

    alphabetical = sorted(EMOTIONS)
    folder = pretrained.save(pretrained.load("fer2013_cnn"), tmp_path / "mine",
                             class_names=alphabetical)
    loaded = pretrained.load(folder)
    with TestClient(create_app(loaded)) as client:
        assert client.get("/api/model").json()["class_names"] == alphabetical
        faces = client.post("/api/predict", content=_png(data.astronaut())).json()["faces"]
    proba = loaded.predict_proba([data.astronaut()])[0]
    assert faces[0]["label"] == "happy"  # output 3 is happy in both orders
    # Output 4 is named "neutral" here (FER-2013's "sad").
    assert faces[0]["probabilities"]["neutral"] == pytest.approx(proba[4], abs=1e-3)
    assert faces[0]["probabilities"]["sad"] == pytest.approx(proba[5], abs=1e-3)
    assert FaceStream(loaded).class_names == alphabetical
    again = pretrained.save(loaded, tmp_path / "again")
    assert pretrained.info(again)["class_names"] == alphabetical
    # Trained anew, the network no longer has the folder's names.
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (14, 48, 48), dtype=np.uint8), np.arange(14) % 7
    loaded[-1].set_params(epochs=1).fit(X, y)
    assert FaceStream(loaded).class_names == list(pretrained.info("fer2013_cnn")["class_names"])


def test_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and "getUserMedia" in page.text
    # Nothing from elsewhere: no external script, style or font.
    assert "http://" not in page.text and "https://" not in page.text


def test_create_app_checks_its_parameters():
    from fersk.serve import create_app

    with pytest.raises(ValueError, match=r"'max_upload_bytes' parameter of create_app must be an int"):
        create_app(max_upload_bytes=0)
    with pytest.raises(TypeError, match="'model' parameter of create_app"):
        create_app(5)
    with pytest.raises(ValueError, match="no_such_model"):
        create_app("no_such_model")


# --------------------------------------------------------------------------
# A real server: `fersk serve` in a subprocess on a free port.


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def _post(url, payload, content_type="application/octet-stream", timeout=60):
    request = urllib.request.Request(url, data=payload, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("uvicorn", reason="fersk serve needs the serve extra (uvicorn)")
    log = tmp_path_factory.mktemp("serve") / "server.log"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fersk.cli", "serve", "--port", "0",
             "--max-upload-mb", "0.5"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    url = None
    try:
        deadline = time.monotonic() + 180  # loading TensorFlow and the model on a busy machine
        while True:
            # --port 0: the system picks a free port, and the command prints it
            said = re.search(r"serving (http://127\.0\.0\.1:(\d+))/", log.read_text())
            if said and said.group(2) != "0":
                url = said.group(1)
            try:
                if url and _get(f"{url}/api/health")[1] == {"status": "ok"}:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"fersk serve did not start:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_port_in_use_is_said_before_the_model_loads(capsys):
    """uvicorn, binding the port itself, ended the process with status 3
    (SystemExit through fersk.cli.main) after the model had loaded."""
    pytest.importorskip("uvicorn", reason="fersk serve needs the serve extra (uvicorn)")
    from fersk.cli import main
    from fersk.serve import serve

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.monotonic()
        assert main(["serve", "--port", str(port), "--model", "no-such-model"]) == 1
        err = capsys.readouterr().err
        assert f"cannot serve on 127.0.0.1:{port}" in err and "is the port in use?" in err
        with pytest.raises(OSError, match="is the port in use"):
            serve("no-such-model", port=port)
        assert time.monotonic() - start < 30  # no model was loaded


def test_real_server(server):
    status, answer = _post(f"{server}/api/predict", _jpeg(data.astronaut()), "image/jpeg")
    assert status == 200 and [f["label"] for f in answer["faces"]] == ["happy"]
    status, answer = _post(f"{server}/api/predict", b"plain text", "text/plain")
    assert status == 400 and answer["error"]["code"] == "not_an_image"
    status, answer = _post(f"{server}/api/predict", b"\0" * 600_000)
    assert status == 413 and answer["error"]["code"] == "too_large"
    # a client that waits for 100 Continue (curl) gets the 413 instead, and sends nothing
    host, port = server.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50000000\r\n"
                    b"Expect: 100-continue\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 413 ")
    assert _get(f"{server}/api/health") == (200, {"status": "ok"})
    assert _get(f"{server}/api/model")[1]["name"] == pretrained.DEFAULT_MODEL
    # bound to 127.0.0.1: another Host (DNS rebinding) is refused
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(b"GET /api/model HTTP/1.1\r\nHost: attacker.example\r\n"
                    b"Connection: close\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 403 ")


# --------------------------------------------------------------------------
# The page in headless Chromium with a fake camera.


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def write_y4m(path, n_frames=20, size=(640, 480)):
    """A YUV4MPEG2 (4:2:0) video of the astronaut's face moving, for
    Chromium's --use-file-for-fake-video-capture."""
    w, h = size
    face = np.asarray(Image.fromarray(data.astronaut()[20:230, 140:330]).resize((190, 210)))
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for t in range(n_frames):
            frame = np.full((h, w, 3), 60, np.uint8)
            r, c = 120, 100 + 10 * t
            frame[r : r + face.shape[0], c : c + face.shape[1]] = face
            ycc = np.asarray(Image.fromarray(frame).convert("YCbCr"))
            planes = [ycc[..., 0]] + [
                np.asarray(Image.fromarray(ycc[..., k]).resize((w // 2, h // 2),
                                                               Image.Resampling.BILINEAR))
                for k in (1, 2)
            ]
            f.write(b"FRAME\n" + b"".join(p.tobytes() for p in planes))


def test_page_in_headless_chromium_with_a_fake_camera(server, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser test drives Chromium with Playwright "
        "(pip install playwright; its browser download is not needed)"
    )
    video = tmp_path / "faces.y4m"
    write_y4m(video)
    args = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
    ]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server + "/")
            page.click("#start")
            face = page.wait_for_selector("#faces li.face", timeout=120_000)
            label = face.get_attribute("data-label")
            box = [float(v) for v in face.get_attribute("data-box").split()]
            text = page.inner_text("#faces")
            shown_name = face.query_selector(".name").inner_text()
            n_bars = len(face.query_selector_all(".bars span"))
            status = page.inner_text("#status")
            page.wait_for_timeout(500)
            shot = os.environ.get("FERSK_SCREENSHOT")
            if shot:
                page.screenshot(path=shot)
        finally:
            browser.close()
    assert not errors, errors
    assert label in EMOTIONS and label in text and shown_name == label
    assert n_bars == len(EMOTIONS)  # one probability bar per class
    # In the camera frame's pixels: the face of the 190x210 patch at row 120.
    assert len(box) == 4 and 60 < box[2] < 200 and 40 < box[3] < 190
    assert 120 < box[0] < 260 and 100 < box[1] < 560
    assert "camera:" in status and "face(s)" in status


def test_page_classifies_photos_as_it_shows_them(server, tmp_path):
    """The page sent the photo's file and drew the server's boxes on its own
    decoding of it: a WebP with an EXIF orientation (turned by the server,
    not by Chromium) got its boxes beside the face, a TIFF was an error, and
    a 48 MP photo was refused.  It now sends the pixels it shows, reduced.
    A transparent PNG was sent black where it is clear (JPEG has no alpha),
    and a small face crop re-encoded as JPEG got other probabilities than
    its file: up to a megapixel the page now sends PNG, on white."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser test drives Chromium with Playwright")
    upright = data.astronaut()[:, :400]  # 512 x 400
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: stored turned the other way
    webp = tmp_path / "exif6.webp"
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(
        webp, "WEBP", quality=90, exif=exif.tobytes())
    tiff = tmp_path / "photo.tif"
    Image.fromarray(data.astronaut()[:400, 100:400]).save(tiff)  # 360 kB, under the limit
    big = tmp_path / "big.jpg"  # a 48 MP phone photo's size
    canvas = Image.new("RGB", (8064, 6048), (90, 90, 90))
    canvas.paste(Image.fromarray(data.astronaut()).resize((6048, 6048)), (0, 0))
    canvas.save(big, quality=80)
    clear = tmp_path / "clear.png"  # transparent white around an opaque grey square
    rgba = np.zeros((100, 120, 4), np.uint8)
    rgba[..., :3], rgba[30:70, 40:80] = 255, (128, 128, 128, 255)
    Image.fromarray(rgba).save(clear)
    crop = tmp_path / "crop48.png"  # a precropped face, as FER-2013's
    face48 = np.asarray(Image.fromarray(data.astronaut()[20:230, 140:330]).resize((48, 48)))
    Image.fromarray(face48).save(crop)
    # the server's answers, as the page got them, and the bytes it sent (a data URL)
    record = """
      window.__answers = []; window.__sent = [];
      const realFetch = window.fetch;
      window.fetch = async (url, options) => {
        if (String(url).includes("/api/predict"))
          window.__sent.push(await new Promise(resolve => {
            const reader = new FileReader();
            reader.onload = () => resolve(reader.result);
            reader.readAsDataURL(options.body);
          }));
        const answer = await realFetch(url, options);
        if (String(url).includes("/api/predict"))
          window.__answers.push(await answer.clone().json());
        return answer;
      };"""
    shown = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.add_init_script(record)
            page.goto(server + "/")
            for path in (webp, tiff, big, clear, crop):
                page.evaluate("document.getElementById('status').textContent = ''")
                page.set_input_files("#photo", str(path))
                page.wait_for_function(
                    "/face\\(s\\)|error/.test(document.getElementById('status').textContent)",
                    timeout=120_000)
                shown[path.name] = {
                    "status": page.inner_text("#status"),
                    "view": page.evaluate("[document.getElementById('view').width, "
                                          "document.getElementById('view').height]"),
                    "boxes": [[float(v) for v in li.get_attribute("data-box").split()]
                              for li in page.query_selector_all("#faces li.face")],
                    "answer": page.evaluate("window.__answers[window.__answers.length - 1]"),
                    "sent": base64.b64decode(page.evaluate(
                        "window.__sent[window.__sent.length - 1]").split(",", 1)[1]),
                }
        finally:
            browser.close()
    assert not errors, errors
    for name, got in shown.items():
        assert "face(s)" in got["status"], (name, got["status"])
        answer = got["answer"]
        # the boxes drawn are the server's, on the very pixels it classified
        assert got["view"] == [answer["width"], answer["height"]], name
        boxes = [[f["box"][k] for k in ("row", "col", "height", "width")] for f in answer["faces"]]
        assert len(got["boxes"]) == len(boxes), name
        assert np.allclose(got["boxes"], boxes, atol=0.06), name
    assert "cannot show" in shown["photo.tif"]["status"]
    assert len(shown["photo.tif"]["boxes"]) == 1
    # sent reduced: 2048 x 1536, the face still found
    assert shown["big.jpg"]["view"] == [2048, 1536] and len(shown["big.jpg"]["boxes"]) == 1
    # on white, where the server's own reading of the file (alpha dropped) is white too
    sent = np.asarray(Image.open(io.BytesIO(shown["clear.png"]["sent"])).convert("RGB"))
    assert (sent[0, 0] == 255).all() and (sent[50, 60] == 128).all()
    assert np.array_equal(sent, rgba[..., :3])
    # the small face sent losslessly: the file's pixels, the file's answer
    sent = np.asarray(Image.open(io.BytesIO(shown["crop48.png"]["sent"])).convert("RGB"))
    assert np.array_equal(sent, face48)
    status, direct = _post(f"{server}/api/predict", crop.read_bytes(), "image/png")
    assert status == 200 and direct["faces"][0]["kind"] == "precropped"
    got = shown["crop48.png"]["answer"]["faces"][0]["probabilities"]
    assert got == pytest.approx(direct["faces"][0]["probabilities"], abs=1e-6)


def test_page_draws_the_last_photo_picked(server, tmp_path):
    """A photo picked first but answered last (a large photo, decoded and
    reduced in the page, is sent after a small one picked next) was drawn
    over the later photo's answer."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser test drives Chromium with Playwright")
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    Image.fromarray(np.full((150, 200), 90, np.uint8)).save(first)
    Image.fromarray(np.full((120, 100), 200, np.uint8)).save(second)
    # the first photo's answer held 3 s in the page: it arrives after the second's
    slow_first = """
      window.__posted = 0; window.__answers = 0;
      const realFetch = window.fetch;
      window.fetch = async (url, options) => {
        if (!String(url).includes("/api/predict")) return realFetch(url, options);
        const k = window.__posted++;
        const answer = await realFetch(url, options);
        if (k === 0) await new Promise(r => setTimeout(r, 3000));
        window.__answers += 1;
        return answer;
      };"""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.add_init_script(slow_first)
            page.goto(server + "/")
            page.set_input_files("#photo", str(first))
            page.wait_for_function("window.__posted === 1", timeout=120_000)
            page.set_input_files("#photo", str(second))
            page.wait_for_function("window.__answers >= 2", timeout=120_000)
            page.wait_for_timeout(500)  # the first answer's turn to be drawn, or not
            view = page.evaluate("[document.getElementById('view').width, "
                                 "document.getElementById('view').height]")
            status = page.inner_text("#status")
        finally:
            browser.close()
    assert not errors, errors
    assert view == [100, 120] and status.startswith("second.png:"), (view, status)


def test_page_stop_then_start_runs_one_camera_loop(server, tmp_path):
    """Stop, then Start while an answer is on its way: the first loop, woken
    by that answer with `running` true again, went on beside the new one
    (two requests at a time from then on, frames drawn twice)."""
    # every answer held 1.5 s in the page, and the most requests at once counted
    slow_fetch = """
      window.__inflight = 0; window.__most = 0; window.__answers = 0;
      const realFetch = window.fetch;
      window.fetch = async (url, options) => {
        if (!String(url).includes("/api/predict")) return realFetch(url, options);
        window.__inflight += 1;
        window.__most = Math.max(window.__most, window.__inflight);
        try {
          const answer = await realFetch(url, options);
          await new Promise(r => setTimeout(r, 1500));
          return answer;
        } finally { window.__inflight -= 1; window.__answers += 1; }
      };"""
    with _camera_page(server, tmp_path, slow_fetch) as page:
        page.click("#start")
        page.wait_for_function("window.__inflight === 1", timeout=120_000)
        page.click("#stop")
        page.click("#start")
        # the answer the stopped loop waited for, and the new loop's first: from then
        # on one request at a time
        page.wait_for_function("window.__answers >= 2", timeout=120_000)
        page.evaluate("window.__most = window.__inflight")
        page.wait_for_function("window.__answers >= 5", timeout=120_000)
        most = page.evaluate("window.__most")
    assert most == 1

def test_page_stopped_while_the_camera_opens_leaves_no_camera_on(server, tmp_path):
    """Start, then a photo (which stops the camera) while the permission
    prompt is open, then Start again: the first stream, granted late, was
    kept in place of the second and never stopped (the camera stayed on after
    Stop)."""
    photo = tmp_path / "face.png"
    Image.fromarray(data.astronaut()[::4, ::4]).save(photo)
    # the first camera granted 2 s late (a permission prompt); every track counted
    slow_camera = """
      window.__tracks = []; let calls = 0;
      const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = async (c) => {
        const first = calls++ === 0;
        const media = await real(c);
        media.getTracks().forEach(t => window.__tracks.push(t));
        if (first) await new Promise(r => setTimeout(r, 2000));
        return media;
      };"""
    with _camera_page(server, tmp_path, slow_camera) as page:
        page.click("#start")
        page.set_input_files("#photo", str(photo))
        page.wait_for_function("!document.getElementById('start').disabled", timeout=60_000)
        page.click("#start")
        page.wait_for_function("window.__tracks.length >= 2", timeout=60_000)
        page.wait_for_timeout(3000)  # the first camera granted
        page.wait_for_function("!document.getElementById('stop').disabled", timeout=60_000)
        page.click("#stop")
        live = page.evaluate("window.__tracks.filter(t => t.readyState === 'live').length")
    assert live == 0


@contextlib.contextmanager
def _camera_page(server, tmp_path, init_script):
    """The app's page in headless Chromium, a fake camera playing faces,
    ``init_script`` run before the page's own (skips without Chromium or
    Playwright)."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser test drives Chromium with Playwright")
    video = tmp_path / "faces.y4m"
    write_y4m(video)
    args = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}", "--no-sandbox", "--disable-dev-shm-usage"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=args)
        try:
            page = browser.new_page()
            page.add_init_script(init_script)
            page.goto(server + "/")
            yield page
        finally:
            browser.close()
