"""The cluster: nodes, the metadata service, partitions replicated by Multi-Paxos."""
