"""The pages under /ui/ (docs/pages.md): server-rendered views of the same queries as the API."""
