"""``python -m strata.bench [package|ckpt|models|train] ...``: see the package's documentation."""

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    which = argv.pop(0) if argv and argv[0] in ("package", "ckpt", "models", "train") else "package"
    if which == "ckpt":
        from .ckpt import main as run
    elif which == "models":
        from .models import main as run
    elif which == "train":
        from .train import main as run
    else:
        from .package import main as run
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
