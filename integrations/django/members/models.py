"""A profile beside each user (one-to-one), with a plan and a company (a
foreign key): the paths `profile.plan` and `profile.company.name`."""

from django.conf import settings
from django.db import models


class Company(models.Model):
    name = models.CharField(max_length=100)


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    plan = models.CharField(max_length=20, default="free")
    company = models.ForeignKey(Company, null=True, on_delete=models.SET_NULL)
