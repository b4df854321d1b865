"""Service tickets: clients ask for help, staff work and close them (the service history)."""
