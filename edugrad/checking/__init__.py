"""The learner's checking tools: is a backend right, and where does a training step go wrong?

    conformance.py   the cases: one table of inputs per primitive, run on a backend and
                     compared with the NumPy backend
    check.py         the checker and its command line: a scoreboard, one line per primitive
                         python -m edugrad.checking.check NAME | module:Class | file.py:Class
    lockstep.py      the lock-step diff: one training step on the NumPy backend and on yours,
                     compared primitive call by primitive call (`check ... --lockstep`)

Layer: tools, on top of everything. They build inputs with TensorData, run whole training
steps with edugrad, nn and optim, and compare on the host with NumPy, as the tests do; so they
live here and not in backends/, whose modules see only the primitive spec and the interface.
Nothing in edugrad imports them except the doctor (`python -m edugrad.doctor`), and importing
edugrad does not load them.
"""
