"""Flask-level plumbing shared by every endpoint: the Api, access rules, errors, docs."""
