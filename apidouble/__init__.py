"""A Kubernetes API server double over real HTTP, for tests and local development.

Production packages never import this package; only ``mtproxy.cmd`` and the tests do.

From a sync fixture::

    from mtproxy.apidouble import start_in_thread

    double = start_in_thread()
    double.write_kubeconfig(tmp_path / "kubeconfig")
    ...
    double.stop()

From trio::

    app = ApiDouble()
    url = await nursery.start(partial(serve, app, port=0))

What real API server behaviour is reproduced, and what is not, is stated in each
module's docstring: :mod:`.store` (resourceVersions, history, compaction), :mod:`.watch`,
:mod:`.reads` (lists, paging), :mod:`.writes` (create/update/patch/delete),
:mod:`.strategy` (generation, status subresource, finalizers), :mod:`.crds` and
:mod:`.schema` (CRD registration, validation, defaulting, pruning), :mod:`.selectors`,
:mod:`.tables`, :mod:`.reviews`, :mod:`.discovery`, :mod:`.faults`.
"""

from .app import ApiDouble as ApiDouble
from .app import ApiDoubleStatistics as ApiDoubleStatistics
from .cli import run_local_apiserver as run_local_apiserver
from .errors import ApiError as ApiError
from .faults import Faults as Faults
from .faults import InjectedFailure as InjectedFailure
from .kubeconfig import kubeconfig_document as kubeconfig_document
from .kubeconfig import write_kubeconfig as write_kubeconfig
from .reviews import AccessRule as AccessRule
from .reviews import ReviewRules as ReviewRules
from .reviews import UserInfo as UserInfo
from .server import DoubleOptions as DoubleOptions
from .server import RunningDouble as RunningDouble
from .server import serve as serve
from .server import start_in_thread as start_in_thread
from .state import load_state as load_state
from .state import save_state as save_state

__all__ = [
    "AccessRule",
    "ApiDouble",
    "ApiDoubleStatistics",
    "ApiError",
    "DoubleOptions",
    "Faults",
    "InjectedFailure",
    "ReviewRules",
    "RunningDouble",
    "UserInfo",
    "kubeconfig_document",
    "load_state",
    "run_local_apiserver",
    "save_state",
    "serve",
    "start_in_thread",
    "write_kubeconfig",
]
