"""The brand console (web pages for staff): sign-in, sessions, CSRF, role checks.

`auth` owns the blueprint, sessions, CSRF and `login_required`; every other module adds the
pages of one area. Importing the package registers them all on `bp`.
"""
from console import (  # noqa: F401
    audit,
    auth,
    campaigns,
    catalog,
    dashboard,
    dealers,
    finance,
    imports,
    master_data,
    materials,
    orders,
    policies,
    prices,
    rebates,
    returns,
    staff,
    statements,
    stock,
    targets,
    tracking,
)
from console.auth import bp  # noqa: F401
