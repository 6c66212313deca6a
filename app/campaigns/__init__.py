"""Customer groups and campaigns to them, one module a purpose:

- `limits`: how many group messages a customer group may still receive this month;
- `groups`: syncing customer groups from WeCom and mapping them to dealers;
- `authoring`: a campaign's text and attachments checked, a draft stored;
- `planning`: which groups a campaign goes to, one WeCom task per group owner;
- `sending`: scheduling, cancelling, sending, creating the WeCom tasks, retrying;
- `results`: what WeCom says each task did, and reminding reps of unconfirmed tasks;
- `reading`: campaigns for the console and the periodic tick (`jobs`);
- `service`: only the job names RQ has campaign sends booked under.
"""
