from tests.api.support import api, api_as, demo  # noqa: F401
