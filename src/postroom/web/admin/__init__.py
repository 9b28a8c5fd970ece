"""The admin pages: login, projects, credentials, API keys, domains and usage (`/admin/...`)."""
