"""The invoice as a PDF a client can be sent: `InvoiceDocument` says what it shows,
`render_invoice_pdf` draws it."""

from app.invoices.pdf.document import InvoiceDocument, Logo, Party, PdfLine, PdfPayment
from app.invoices.pdf.render import render_invoice_pdf

__all__ = ["InvoiceDocument", "Logo", "Party", "PdfLine", "PdfPayment", "render_invoice_pdf"]
