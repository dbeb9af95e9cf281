import matplotlib
import pytest

matplotlib.use("Agg")

import lenet  # noqa: E402


@pytest.fixture(scope="session")
def data() -> lenet.MNIST:
    return lenet.load_mnist()


@pytest.fixture()
def model() -> lenet.LeNet:
    return lenet.pretrained()
