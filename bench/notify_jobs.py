"""The no-op job bench/notify.py runs to measure RQ's own rate (imported by the workers)."""


def noop():
    return None
