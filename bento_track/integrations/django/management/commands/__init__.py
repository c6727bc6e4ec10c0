"""`python manage.py bento_sync_subscribers`."""
