"""The kernel: what every domain uses and no domain owns (the business clock first).

It imports no domain and no shell.
"""
