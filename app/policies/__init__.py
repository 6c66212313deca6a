"""Policies (渠道政策 / 价格政策 / 促销通知): staff write and publish them to an audience of
dealers, and see who read and acknowledged them.

One module a purpose: `authoring` (create, edit, schedule, publish, withdraw, delivery),
`reminders` (reminding stragglers and their reps), `reading` (the console's lists and
figures), `dealer` (what a dealer sees, opening and acknowledging) and `content` (the body's
HTML, attachments, what changed between versions).
"""
