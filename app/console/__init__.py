"""The brand console (web pages for staff): sign-in, sessions, CSRF, role checks."""
