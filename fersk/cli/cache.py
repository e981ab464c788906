"""``fersk cache``: what fersk keeps in its cache folder; ``--clear`` removes it."""

import time

from fersk.cache import cache_contents, cache_home, clear_cache

from ._common import EXIT_OK


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def run(args):
    """Run ``fersk cache``: list the cache folder's files, or clear fersk's.

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``fersk cache`` as :func:`fersk.cli.main` parses
        them: ``clear`` (remove the files fersk wrote) and ``dir`` (the
        folder; None for :func:`fersk.cache.cache_home`).

    Returns
    -------
    status : int
        0.

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["cache", "--dir", "/nonexistent/folder"])
    /nonexistent/folder: no files
    0
    """
    root = cache_home(args.dir)
    if args.clear:
        removed = clear_cache(root)
        kept = [e for e in cache_contents(root) if e["kind"] is None]
        print(f"{root}: removed {len(removed)} files of fersk's "
              f"({_size(sum(e['bytes'] for e in removed))})")
        for entry in kept:
            print(f"kept (not written by fersk, or still being written): {entry['path']}")
        return EXIT_OK
    entries = cache_contents(root)
    if not entries:
        print(f"{root}: no files")
        return EXIT_OK
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["modified"]))
        kind = e["kind"] or "not fersk's"
        print(f"{_size(e['bytes']):>10}  {when}  {kind:<11}  {e['path'].relative_to(root)}")
    mine = [e for e in entries if e["kind"] is not None]
    print(f"{root}: {len(mine)} files of fersk's, {_size(sum(e['bytes'] for e in mine))} "
          "(fersk cache --clear removes them)")
    return EXIT_OK
