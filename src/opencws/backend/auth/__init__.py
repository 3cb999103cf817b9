"""Who is calling: users and their passwords, browser sessions, sign-in throttling and the audit log.

A caller is a *principal*: an API key (`keys.Key`) or a signed-in session; both have `.id`, `.name` and
`.scopes`, which is all the routes look at."""
