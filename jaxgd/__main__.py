"""``python -m jaxgd``: the same as the ``jaxgd`` command."""

from jaxgd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
