"""The kernel: what every domain uses and no domain owns.

`clock` (China business time), `errors` (DomainError), `permissions` (role → permission
table), `money` (integer fen), `inputs` (what a person typed), `validation` (schema fields
with Chinese messages), `events` (the publisher), `settings` (typed brand settings).

It imports no domain and no shell.
"""
