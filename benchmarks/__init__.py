"""Benchmark scripts (each run as a file: ``python benchmarks/<name>.py``) and ``benchmarks.proxy_task``, the
harness behind ``nas_proxy.py`` (a package, so that the script and the tests import it by one name)."""
