"""The machine a circuit graph runs on, fuzzy and integer, and its controllers.

    controller  the only trainable part: P(r_i = 0) -> logits (MLP or LSTM; a table compiles to an MLP)
    stacked     K controllers as one, with a member axis (populations)
    options     the fuzzy machine's options (the paper-silent choices)
    fuzzy       the batched, differentiable NRAM `torch.nn.Module` (training, evaluation)
    integer     the integer reference machine: the oracle, and the discretized executor's engine
    discrete    a controller (trained, or a program) driving the integer machine
    program     a discrete program: circuits and a table of zero-patterns
    extract     a trained feedforward controller -> its program
    weights     a program -> controller weights that run it
    trace       one test case, step by step
    export      the unrolled fuzzy machine as a `torch.export` program
"""
