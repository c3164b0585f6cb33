"""Statistical comparison of runs: `heartgrid ab`, `compare`, `baseline`, `regress`.

    metric_spec  what is compared: final value or curve average of a metric, and its direction
    runs         many run directories' metrics in one DuckDB table
    stats        bootstrap intervals, Welch / Mann-Whitney and paired t / Wilcoxon signed-rank
                 tests, effect sizes, Holm, verdicts
    pairing      which runs of two sides are pairs (the same seed): --pairing auto|paired|unpaired
    power        the smallest difference a comparison can detect (minimum detectable effect)
    scores       eval-suite score tables of two sides compared per simulation and overall
    comparison   reference vs candidate runs: statistics per metric, curves, config diff
    report       console text, report.json, curves.png, self-contained report.html
    baseline     the local baseline store
    regress      config, metric-name and statistics checks against a baseline
    ab           training seeds of two recipes in parallel subprocesses

The package imports nothing itself, so that `heartgrid` verbs that do not compare runs do not
pay for scipy, DuckDB and matplotlib.
"""
