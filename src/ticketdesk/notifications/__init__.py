"""Who hears of each event: the mails and webhook calls it becomes, and running them."""
