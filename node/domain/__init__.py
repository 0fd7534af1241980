"""The node's own records: the rules a record obeys (`validation`, `limits`),
writing one (`records`: validate, policy, seal, append and index in one
transaction), reading what the node holds (`reading`), the search index
(`index`). May import crypto, federation and node.storage; never grpc."""
