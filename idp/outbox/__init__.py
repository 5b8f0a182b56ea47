"""The delivery outbox: messages to other servers, written with the change that causes
them and delivered after it commits (``service``), with retries and dead letters."""
