import pytest

from tests.inventory.cafiles import write_ca_files


@pytest.fixture(scope="session")
def ca_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """CA file paths by kind (``tests.inventory.cafiles``): ``pem`` loads, the others are refused."""
    return write_ca_files(tmp_path_factory.mktemp("ca"))
