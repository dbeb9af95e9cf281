import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)  # the tests in this process: one thread, beside the other pytest worker

import lenet  # noqa: E402


@pytest.fixture(scope="session")
def data() -> lenet.MNIST:
    return lenet.load_mnist()


@pytest.fixture()
def model() -> lenet.LeNet:
    return lenet.pretrained()
