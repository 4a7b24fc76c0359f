"""One wrapper for every command-line tool: user mistakes print one line, bugs keep their traceback."""
from __future__ import annotations

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
