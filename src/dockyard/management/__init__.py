"""Management use-cases: namespaces, members, repositories, credentials, robots, users and the
audit log. Authorization checks and audit records live here; `api/management` is the HTTP edge."""
