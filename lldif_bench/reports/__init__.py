"""Reports: the paper's reported numbers (reference only), table builders, figures, sweeps.

- :mod:`paper_tables` — Tables 1–5 as printed in the LLDif paper, marked "reported by the paper".
- :mod:`runs` — reading ``runs/leaderboard.csv`` and run directories.
- :mod:`tables` — table specs as data and the builder (ours vs paper, Δ, runs).
- :mod:`figures` — Figs. 5–8 and the darkness-sweep chart (matplotlib, Agg).
- :mod:`reproduce` — the plan (and run) of every method/variant a table needs.
- :mod:`sweep` — accuracy vs exposure (EV) of trained runs.
"""
