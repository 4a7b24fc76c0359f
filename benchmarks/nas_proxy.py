#!/usr/bin/env python
"""Cream and its peers on a proxy task with signal: the command line of ``benchmarks/proxy_task``.

    python benchmarks/nas_proxy.py groundtruth [--jobs 2]       # 16 archs x 2 seeds
    python benchmarks/nas_proxy.py compare --jobs 2 --plan      # the run's projected wall time
    python benchmarks/nas_proxy.py compare --jobs 2             # everything (hours: --plan says how many)
    python benchmarks/nas_proxy.py compare --quick              # about a minute: checks the harness

``--help`` says what each sub-command does (``proxy_task/cli.py``); the harness is the package beside
this file, one module per phase (see its ``__init__``). A job's own process runs this file too
(``_job <spec> <result>``).
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))       # this checkout's cream_det and benchmarks, before any installed one

from benchmarks.proxy_task.cli import main  # noqa: E402

if __name__ == '__main__':
    main()
