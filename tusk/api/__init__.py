"""The HTTP contract between tuskd and its clients: wire models and the put-stream framing."""
