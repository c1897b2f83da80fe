"""Gates lifted to distributions (paper Eq. 2), and the properties every lifted gate must have.

    select          a gate's table -> the kernel that lifts it (chosen and described in one place)
    lift            the chosen kernel as a batched torch function (`make_kernel`)
    via             a user's hand-written kernel, imported from beside the spec
    distributions   Hypothesis strategies for probability vectors
    properties      the checks behind `nramdsl check` and `nramdsl.testing.check_gate`
"""
