"""The demo tenant of `billing-portal seed-demo`: the shared context in `context.py`, the
orchestration in `seed.py`, each domain's part in its own `demo.py`."""
