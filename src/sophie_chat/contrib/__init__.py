"""Optional add-ons to sophie-chat, each a Django app of its own."""
