"""`python manage.py` commands of bento_track."""
