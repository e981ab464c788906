"""The one progress printer (fersk._progress) and its stream rule."""

import sys

import pytest

from fersk._progress import Progress, log, printing_to, stream


def test_log_goes_to_stdout_unless_a_command_redirects_it(capsys):
    log("load_fer2013", "found 3 files")
    log(None, "3 Training / 1 PublicTest images")
    with printing_to("stderr"):
        log("fersk predict", "1/2 files")
    log("after", "back")
    out, err = capsys.readouterr()
    assert out == ("[load_fer2013] found 3 files\n3 Training / 1 PublicTest images\n"
                   "[after] back\n")
    assert err == "[fersk predict] 1/2 files\n"


def test_printing_to_names_a_stream():
    with pytest.raises(ValueError, match="stdout' or 'stderr"):
        with printing_to("log.txt"):
            pass
    assert stream() is sys.stdout


def test_every_command_has_a_progress_stream():
    from fersk import cli

    assert set(cli._PROGRESS_STREAM) == set(cli._COMMANDS)
    # stdout carries the results of these: progress must not mix with them
    assert cli._PROGRESS_STREAM["predict"] == cli._PROGRESS_STREAM["evaluate"] == "stderr"


@pytest.mark.parametrize("verbose,every,expected", [
    (0, 0.1, []),
    (1, 0.1, [10, 20, 30, 50, 60, 75, 80, 100]),  # another 10 % of the total, the end
    (True, 0.5, [50, 100]),
    (2, 0.1, [5, 10, 20, 25, 30, 50, 60, 75, 80, 100]),  # every update
    (1, 0, [5, 10, 20, 25, 30, 50, 60, 75, 80, 100]),
])
def test_progress_reports(capsys, verbose, every, expected):
    progress = Progress("tag", 100, verbose, text="decoded {done}/{total} images", every=every)
    for done in (5, 10, 20, 25, 30, 50, 60, 75, 80, 100):
        progress.update(done, "2 problems" if done == 100 else None)
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[2].split("/")[0]) for line in lines] == expected
    if lines:
        assert lines[-1].startswith("[tag] decoded 100/100 images, 2 problems, ")
        assert lines[-1].endswith(" s")


def test_progress_note_only_when_verbose(capsys):
    Progress("quiet", 3, 0).note("nothing")
    Progress("fersk predict", 3, True).note("clip.mp4: 4 frames classified")
    assert capsys.readouterr().out == "[fersk predict] clip.mp4: 4 frames classified\n"
