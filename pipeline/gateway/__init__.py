"""The HTTP gateway: Segment/RudderStack-compatible API, persist-before-ack with group commit."""
