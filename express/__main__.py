"""``python -m express``: the same as the ``express`` command."""
from express.serve.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
