"""Open-vocabulary detectors, heads, datasets and metrics."""
from . import datasets, metrics  # noqa: F401
from . import models  # noqa: F401
from . import apis  # noqa: F401
