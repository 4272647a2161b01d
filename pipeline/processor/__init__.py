"""The processor: gateway jobs → deduplicated, routed, mapped delivery jobs, in one transaction."""
