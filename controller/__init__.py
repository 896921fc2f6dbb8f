"""Generic controller runtime: Kubernetes client, informers, stores, work queues, leader election.

No domain words live here; reconcilers give the runtime its meaning.
"""

__all__: list[str] = []
