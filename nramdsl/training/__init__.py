"""Training, evaluation and the seed search, each step of the loop in its own module.

    config          the settings, grouped by aid; defaults = the recipe the examples share
    setup           a machine and its settings -> a Job (task looked up, training complexity, size limits)
    curriculum      App. B's curriculum
    schedule        the phase schedule (curriculum, stretch, sharpen) and each batch's sizes
    objective       the loss with its aids, a pure function of one forward pass
    stopping        every early-stop rule, one table
    state           a run's counters, typed
    member          one run's state in a population: seed, settings, curriculum, generators, counters
    adam            Adam per member over stacked weights
    pbt             population-based training: rank, copy, explore
    population      the engine: K members as one batched model (a single run is K = 1)
    rundir          the run directory: config, metrics, checkpoint, result; atomic writes; safe reads
    interrupt       Ctrl-C: end the step, save, say how to go on
    display         progress on a terminal and in logs
    loop            `train`, `train_population`, `load_run`: a population and its run directory
    evaluate        the paper's metric, evaluation rows, the generalization table (many models at once)
    search          a seed search in units of seeds or populations, scored against the paper's bars
    cluster         a search's units as Ray tasks
    results_table   results/*.json as the README's table beside Table 1
"""
