"""The machine a circuit graph runs on, fuzzy and integer.

    controller  the only trainable part: P(r_i = 0) -> logits (MLP or LSTM)
    fuzzy       the batched, differentiable NRAM `torch.nn.Module` (training, evaluation)
    integer     the integer reference machine: the oracle, and the discretized executor's engine
    discrete    a policy (a trained controller, or a program) driving the integer machine: the paper's
                discretized model
    program     a discrete program: one circuit per zero-pattern (a table controller, or an MLP's table)
    weights     a program -> MLP controller weights whose fuzzy model runs it
    extract     a trained controller -> its program (MLP: exact table; LSTM: observed circuits)
    trace       one case step by step, fuzzy or discretized
    export      the unrolled fuzzy machine as a `torch.export` program
"""
