"""Shared command-line plumbing: user mistakes print one line, bugs keep their traceback."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..errors import CreamDetError


def run_cli(main: Callable[[], None]) -> None:
    try:
        main()
    except CreamDetError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)


class KeyValue(argparse.Action):
    """``--cfg-options a.b=1 c='x'``: values parsed as Python literals where possible, as mmengine does."""

    def __call__(self, parser, namespace, values, option_string=None):
        import ast
        out = getattr(namespace, self.dest) or {}
        for kv in values:
            if '=' not in kv:
                parser.error(f'{option_string} expects KEY=VALUE, got {kv!r}')
            k, v = kv.split('=', 1)
            try:
                out[k] = ast.literal_eval(v)
            except (ValueError, SyntaxError):
                out[k] = v
        setattr(namespace, self.dest, out)


__all__ = ['KeyValue', 'run_cli']
