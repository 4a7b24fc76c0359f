"""The proxy-task harness of ``benchmarks/nas_proxy.py`` (Cream and its peers on a generated task), by phase.

- ``params``: the settings (FULL, QUICK, a task's own) and what a job's spec and its digest hold;
- ``data``: the generated sets and the arch sets (MACs range, ground-truth archs, convergence paths,
  DNA teacher);
- ``jobs``: the kinds of job (stand-alone training, search, score) and one job in its own process;
- ``pool``: running jobs, each result stored under its spec's digest and reused; the committed results;
- ``ground_truth``, ``comparison``, ``learning``: the sub-commands ``groundtruth``, ``compare``,
  ``learnability``;
- ``planning``: ``compare --plan``, the first epoch of each kind of job timed and the full run's wall time projected;
- ``statistics``: a supernet's agreement with itself over seeds, the paired Cream - SPOS difference and its interval;
- ``report``: the tables, the wall time and the figure;
- ``cli``: the command line (``main``), which ``benchmarks/nas_proxy.py`` runs.

The names below are the harness's interface (the tests use them); the committed results path
(``pool.ARCHIVE``) is read where it is used, so patch it there.
"""
from .cli import main
from .comparison import compare, comparison_jobs, search_specs
from .data import (arch_sets, data_dirs, data_seconds, evenly, load, macs_band, make_data, multipath_range,
                   teacher_arch, top_layers)
from .ground_truth import groundtruth, groundtruth_file, groundtruth_specs, report_groundtruth, reusable_groundtruth
from .jobs import (JOBS, claim_work_dir, config_digest, demo_config, holds_finished_search, made_by, register_hook,
                   run_job, score_job, search_config, search_job, standalone_job)
from .learning import learnability
from .planning import plan
from .params import (FULL, GT_KEYS, GT_KNOBS, LATER_KEYS, QUICK, SEARCH_KEYS, STANDALONE_KEYS, STRATEGIES, TASK_FULL,
                     TASKS, classes, gt_params, pick, settings, spec_digest, standalone_spec, task_of)
from .pool import Pool, archive, archive_of, first_ready, job_wall, makespan
from .report import LABELS, results_plot, results_table, stability, wall_time
from .statistics import SELF_CONSISTENCY_BAR, paired_difference, self_consistency

__all__ = ['FULL', 'GT_KEYS', 'GT_KNOBS', 'JOBS', 'LABELS', 'LATER_KEYS', 'QUICK', 'SEARCH_KEYS', 'STANDALONE_KEYS',
           'SELF_CONSISTENCY_BAR', 'STRATEGIES', 'TASKS', 'TASK_FULL', 'Pool', 'arch_sets', 'archive', 'archive_of',
           'claim_work_dir', 'classes', 'compare', 'comparison_jobs', 'config_digest', 'data_dirs', 'data_seconds',
           'demo_config', 'evenly', 'first_ready', 'groundtruth', 'groundtruth_file', 'groundtruth_specs', 'gt_params',
           'holds_finished_search', 'job_wall', 'learnability', 'load', 'macs_band', 'made_by', 'main', 'make_data',
           'makespan', 'multipath_range', 'paired_difference', 'pick', 'plan', 'register_hook', 'report_groundtruth',
           'results_plot', 'results_table', 'reusable_groundtruth', 'run_job', 'score_job', 'search_config',
           'search_job', 'search_specs', 'self_consistency', 'settings', 'spec_digest', 'stability', 'standalone_job',
           'standalone_spec', 'task_of', 'teacher_arch', 'top_layers', 'wall_time']
