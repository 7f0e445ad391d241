"""The pages for people: server-rendered views over the selectors and services, under the project rule."""
