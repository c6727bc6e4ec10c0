"""The site's `tags` callable: every member, and staff as such."""


def tags_for(user):
    return ["member", "staff"] if user.is_staff else ["member"]
