"""tensorflow-datasets builders; importing this package registers them (see `benchmarks`)."""

from jaxsr.datasets.benchmarks import B100
from jaxsr.datasets.benchmarks import BenchmarkBuilder
from jaxsr.datasets.benchmarks import BenchmarkSet
from jaxsr.datasets.benchmarks import BUILDERS
from jaxsr.datasets.benchmarks import Div2kValid
from jaxsr.datasets.benchmarks import find_manual_data
from jaxsr.datasets.benchmarks import Manga109
from jaxsr.datasets.benchmarks import manual_data_hint
from jaxsr.datasets.benchmarks import prepare_if_manual
from jaxsr.datasets.benchmarks import Set14
from jaxsr.datasets.benchmarks import Set5
from jaxsr.datasets.benchmarks import Urban100

__all__ = ["B100", "BenchmarkBuilder", "BenchmarkSet", "BUILDERS", "Div2kValid",
           "find_manual_data", "Manga109", "manual_data_hint", "prepare_if_manual", "Set14",
           "Set5", "Urban100"]
