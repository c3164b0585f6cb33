"""Hyperparameter sweeps on Optuna: `heartgrid sweep` and `heartgrid sweep show` (docs/sweeps.md).

Every trial is an ordinary `heartgrid train` run directory with its resolved config; Optuna
only chooses the values and keeps the book.

    params     KEY=DIST:ARGS: parsing, checking against the config, sampling
    objective  the score of a trial from its metrics.jsonl (final, late, auc), as it grows
    spec       the sweep's definition from the command line or a YAML/JSON file; its identity
    store      the sweep's folder, its Optuna storage and study, sampler and pruner
    ledger     the budget of N trials; trials cut off mid-run are resumed, never lost
    child      the launcher that stops a trial's trainer when its worker dies
    trial      one trial: `heartgrid train` in a subprocess, reported to the pruner, scored
    worker     the ask / train / tell loop, W of them as threads
    show       the table of trials, the best config as a train command, importances
    plots      history, importances, parallel-coordinate (or slice) and Pareto PNGs

The package imports nothing itself; Optuna is imported where it is used, so that other
`heartgrid` verbs do not pay for it.
"""
