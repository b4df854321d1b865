"""The signed-in person's email preferences (`/me/notifications`): a `/me` endpoint of auth
over the notifications package, so notifications never imports auth (auth hands it account
messages)."""
