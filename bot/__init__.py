"""Stateless messaging edge: Twilio WhatsApp adapter, Rasa REST client,
phone-number and text normalisation. Nothing here touches the database."""
