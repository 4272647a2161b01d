"""Vendor OpenAPI documents: reduce a published file to the operations a connector uses, and validate
produced request bodies against them. The project never keeps the vendor's file, only the reduced extract."""

from sdk.openapi.extract import extract_operations, load_document, parse_operation
from sdk.openapi.validate import OperationValidator, load_validator

__all__ = ["extract_operations", "load_document", "parse_operation", "OperationValidator", "load_validator"]
