"""Loaded by pytest before anything else, for the tests and the notebooks alike.

Every Jupyter kernel the suite starts (nbval's too) inherits this process's environment: two math
threads, so that strict nbval of a notebook also proves that a learner with several cores sees exactly
the outputs stored from one thread (``make execute``). The variables are defined in course/execute.py.
"""
import os

from course.execute import thread_env

os.environ.update(thread_env(2))
# Two workers, each kernel with two OpenMP threads, on a 2-core machine: a thread that finishes a parallel region
# first spins (libgomp's default) while the others are descheduled, burning the CPU the other worker needs.
# Sleeping instead changes no result and cut `make test` from 449 s to 342 s on the 2-core test machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
