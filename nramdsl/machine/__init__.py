"""The machine a circuit graph runs on, fuzzy and integer.

    controller  the only trainable part: P(r_i = 0) -> logits (MLP or LSTM)
    fuzzy       the batched, differentiable NRAM `torch.nn.Module` (training, evaluation)
    integer     the integer reference machine: the oracle, and the discretized executor's engine
    discrete    a trained controller driving the integer machine (the paper's discretized model)
    export      the unrolled fuzzy machine as a `torch.export` program
"""
