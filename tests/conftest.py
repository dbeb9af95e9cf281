"""Shared fixtures. Every Jupyter kernel the suite starts (nbval's too) inherits this process's
environment: two math threads, so that strict nbval also proves that a learner with several cores
sees exactly the outputs stored from one thread (``make execute``)."""
import os

from course.execute import thread_env

os.environ.update(thread_env(2))

import matplotlib  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

matplotlib.use("Agg")
torch.set_num_threads(1)  # the tests in this process: one thread each, beside the other worker

import lenet  # noqa: E402


@pytest.fixture(scope="session")
def data() -> lenet.MNIST:
    return lenet.load_mnist()


@pytest.fixture()
def model() -> lenet.LeNet:
    return lenet.pretrained()
