from tests.payments.fixtures import billing, gateway, invoice, lenient_client

__all__ = ["billing", "gateway", "invoice", "lenient_client"]
