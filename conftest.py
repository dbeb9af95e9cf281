"""Loaded by pytest before anything else, for the tests and the notebooks alike.

Every Jupyter kernel the suite starts (nbval's too) inherits this process's environment: two math
threads, so that strict nbval of a notebook also proves that a learner with several cores sees exactly
the outputs stored from one thread (``make execute``). The variables are defined in course/execute.py.
"""
import os

from course.execute import thread_env

os.environ.update(thread_env(2))
