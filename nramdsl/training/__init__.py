"""Training, evaluation and the seed search, each step of the loop in its own module.

    config          the settings, grouped by aid; defaults = the recipe the examples share
    setup           a machine and its settings -> a Job (task looked up, training complexity)
    curriculum      App. B's curriculum
    schedule        the phase schedule (curriculum, stretch, sharpen) and each batch's sizes
    objective       the loss with its aids, a pure function of one forward pass
    stopping        every early-stop rule, one table
    state           the typed training state (what a checkpoint holds)
    rundir          the run directory: config, metrics, checkpoint, result; atomic writes; naming
    display         progress on a terminal and in logs
    loop            the training loop (`train`, `load_run`)
    evaluate        the paper's metric, evaluation rows, the generalization table
    search          a seed search scored against the paper's bars (`nramdsl reproduce`)
    results_table   results/*.json as the README's table beside Table 1
"""
