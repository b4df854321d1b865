from tests.autopay.fixtures import *  # noqa: F403  (the shared fixtures)
