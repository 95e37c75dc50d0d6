"""Generated protobuf and gRPC stubs of the arbiter.v1 contract (never edited by hand)."""
