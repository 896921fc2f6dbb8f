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

Proved against the real server
------------------------------

The contract suite (``tests/apidouble``) runs every test that does not need a fault hook
against this double and against a real ``kube-apiserver`` on ``etcd`` (v1.37, built by
``make testbin``; see ``tests/realservers/kubeapiserver.py``), and so do the controller
runtime's tests (``tests/controller``) and kubectl against the generated CRD
(``tests/cmd/test_kubectl_crd.py``). What differed and was fixed in the double: etcd's
compaction (the compacted revision itself stays readable), the built-in namespaces and 404
for a missing one, the namespace name label, ``Status: Success`` answering deletes, the
plain ``404 page not found`` of unknown API groups, 415 for an unknown patch type before
the object is looked up, MicroTime's six fractional digits, the wording of strict-decoding
and field-selector errors, review answers that leave false fields out, the built-in table
columns of ConfigMaps, Secrets, Namespaces and Leases, non-resource review rules that
matched resources, and ``events.k8s.io/v1``, now served over the core Events' storage
(:mod:`.eventsapi`). What still differs, and why it does not matter to our code:

==============================  ================================  ======================================================
What                            The double                        Why it does not matter
==============================  ================================  ======================================================
Authentication and              any token, or none, may do        the service's own rights are exercised on the real
authorisation of requests       anything                          server (tests/proxy/auth, tests/reconcilers)
TokenReview,                    answered from a rules table       same answer shape; real RBAC answers are tested on the
SubjectAccessReview                                               real server
TokenReview audiences           echoes the requested ones; a      the real server authenticates a token for its own
                                listed token always passes        audiences only; our reviewer asks none
Cache of successful token       none                              the real server keeps one 10 s (a deleted service
reviews                                                           account's token works that long); the proxy caches 10
                                                                  s too
Periodic watch bookmarks        after bookmark_interval_s idle    the real watch cache sends one about every 60 s; the
                                                                  informer only uses them to move its resourceVersion on
Watch from an old version of a  410 once compact() passed it      the real watch cache keeps its own window after etcd
cached resource                                                   compacts; the informer relists on 410 either way
Server-side apply (apply-       415                               we write status with merge patches only
patch+yaml)
Strategic merge patch           approximate (a few known list     our client sends merge patches
                                keys)
Namespace deletion              contents and namespace removed    a namespace controller does it in a cluster (the test
                                after namespace_grace_s           server has none: Terminating stays); we never delete
                                                                  namespaces
CRD deletion, conditions,       at once                           the real server takes about 0.5 s; we never manage
OpenAPI                                                           CRDs
Owner references                not followed                      garbage collection needs kube-controller-manager; we
                                                                  set no owners
Defaulting and validation of    metadata and MicroTime only; no   we write Events, Leases, ConfigMaps and MetricAccess
built-in kinds                  clusterIP, no pod defaults        status; discovered Services and Pods are seeded as
                                                                  given
events.k8s.io/v1 validation     eventTime's format only           the real server also requires reportingController,
                                                                  reportingInstance and action; our recorder sends them
metadata.managedFields          not kept                          nothing reads them
Tables of other built-in kinds  Name and Age only                 kubectl's human output; our code never reads Tables
/openapi/v2                     404 (v3 only)                     kubectl reads v3; our code reads neither
/version                        1.32 (the machines' kubectl)      only kubectl's version-skew warning reads it
Protobuf                        request bodies of a few kinds;    our client speaks JSON
                                JSON answers
YAML request bodies             PyYAML: y and n are strings       go-yaml reads them as booleans; our client sends JSON
Priority and fairness, audit    none (fault hooks give 429 and    the client's retries are tested with the fault hooks
                                503)
==============================  ================================  ======================================================
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
