#!/usr/bin/env bash
# Distributed supernet search with torchrun:  tools/dist_search.sh CONFIG GPUS [search.py args]
# (gloo on a machine without CUDA, so `tools/dist_search.sh configs/search/cream_demo.py 2` runs on CPU)
exec env TOOL=tools/search.py "$(dirname "${BASH_SOURCE[0]}")/dist_train.sh" "$@"
