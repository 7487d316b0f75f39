"""Mail: the mails the service sends, their reply addresses, and reading the mails it gets."""
