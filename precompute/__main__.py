"""``python -m precompute --images DIR --annotations FILE --out STORE`` runs ``ocr-targets precompute``.

Any other ``ocr-targets`` command works too: ``python -m precompute verify STORE``.
"""

import sys

from .cli import build_parser, main

commands = build_parser()._subparsers._group_actions[0].choices
arguments = sys.argv[1:]
if not arguments or arguments[0] not in {*commands, "-h", "--help", "--version"}:
    arguments = ["precompute", *arguments]
sys.exit(main(arguments))
