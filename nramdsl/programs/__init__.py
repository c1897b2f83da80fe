"""Programs you can read, write and run: the discrete side of a machine, above training.

    text      a circuit as the statements of a table row; zero-patterns merged into few conditions
    emit      a table program as `.nram` (`nramdsl explain --emit nram`)
    explain   a trained run -> its program (a table, or an LSTM's observed circuits), checked on the
              integer machine against the discretized model (`nramdsl explain`)
    execute   a table machine run on its task on the integer machine (`nramdsl run`)
    trace     one test case step by step, fuzzy or discretized (`nramdsl trace`)
    plot      the trace as one figure (matplotlib, the optional `plot` extra)
"""
